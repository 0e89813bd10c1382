# The README's two commands: `make run` and `make test`.
.PHONY: run test install install-test bench
run: install
	.venv/bin/duplexbot serve
test: install-test
	.venv/bin/ruff check bot sip models tests
	.venv/bin/mypy
	.venv/bin/python -m pytest -q
install:
	scripts/install.sh runtime
install-test:
	scripts/install.sh test
