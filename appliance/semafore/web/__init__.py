"""semafore.web"""
