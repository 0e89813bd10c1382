"""HTTP route modules, discovered by bot.server (each defines setup(app, runtime))."""
