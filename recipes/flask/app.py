"""A small Flask application: `app.py` serves on port 8000, `app.py
--check` answers one request in-process and prints it (what the image
test runs, with no network)."""

import sys

import flask
import yaml

app = flask.Flask(__name__)


@app.get("/")
def index():
    body = yaml.dump({"hello": "from stele", "libyaml": yaml.__with_libyaml__})
    return flask.Response(body, mimetype="application/yaml")


if __name__ == "__main__":
    if "--check" in sys.argv:
        response = app.test_client().get("/")
        print(response.status_code, response.get_data(as_text=True), end="")
    else:
        app.run(host="0.0.0.0", port=8000)
