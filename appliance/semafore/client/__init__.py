"""semafore.client"""
