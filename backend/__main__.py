"""`python -m backend`: serve the API on the host and port from settings."""
import uvicorn

from backend.core.config import settings

if __name__ == "__main__":
    uvicorn.run("backend.main:app", host=settings.api_host, port=settings.api_port,
                log_level="warning", loop="uvloop", http="httptools", workers=settings.api_workers)
