from kehu.cli import app

app(prog_name="kehu")
