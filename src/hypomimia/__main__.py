from hypomimia.cli import app

app()
