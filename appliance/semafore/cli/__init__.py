"""semafore.cli"""
