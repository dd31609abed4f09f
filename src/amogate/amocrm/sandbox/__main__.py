"""`python -m amogate.amocrm.sandbox [--port 9096 ...]`: serve the sandbox."""

from amogate.amocrm.sandbox.server import main

if __name__ == "__main__":
    main()
