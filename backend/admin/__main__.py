from backend.admin.cli import app

app()
