"""An S3-compatible server for the tests: moto in server mode on 127.0.0.1.

    python s3.py

Prints the port the system chose on its first line and serves until ended.
"""

import time

from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    server.stop()
