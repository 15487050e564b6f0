from record import record

def cross_compiler(compiler, options=None):
    record("cc.cross_compiler", compiler=compiler, options=options)
    return {"compiler": compiler, "options": options}
