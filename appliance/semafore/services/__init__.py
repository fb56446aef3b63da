"""semafore.services"""
