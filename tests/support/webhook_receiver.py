"""A webhook receiver for the alert tests, strict as a Slack incoming webhook is:

  * POST only, to any path (Slack's are /services/T.../B.../<token>);
  * the body must be application/json (else 415, as standin.py refuses any other media type);
  * it must be a JSON object with a non-empty string `text`: otherwise 400 `invalid_payload`
    (not JSON / not an object) or 400 `no_text` (Slack's own answers);
  * it answers 200 with the text body `ok`, as Slack does.

Every accepted or refused POST is kept whole (path, headers, body) for the tests to read:
GET /_control/received -> [{path, content_type, user_agent, body (parsed), raw (text), status}].
Faults (delay, status, drop), the request log and recorded exceptions come from standin.py.
usage: python webhook_receiver.py PORT_FILE
"""

import json

import standin


class State(standin.State):
    def __init__(self):
        super().__init__()
        self.received = []


S = State()


class Handler(standin.Handler):
    state = S

    def error(self, status, message):
        self.reply(status, raw=message, headers={"content-type": "text/plain"})

    def keep(self, path, status, body):
        with S.lock:
            S.received.append({
                "path": path,
                "content_type": self.headers.get("content-type"),
                "user_agent": self.headers.get("user-agent"),
                "raw": self.raw_body.decode("utf-8", "replace"),
                "body": body,
                "status": status,
            })

    def api(self, method, path):
        if method != "POST":
            return self.error(405, "invalid_method")
        try:
            body = json.loads(self.raw_body)
        except ValueError:
            self.keep(path, 400, None)
            return self.error(400, "invalid_payload")
        if not isinstance(body, dict):
            self.keep(path, 400, None)
            return self.error(400, "invalid_payload")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            self.keep(path, 400, body)
            return self.error(400, "no_text")
        self.keep(path, 200, body)
        return self.reply(200, raw="ok", headers={"content-type": "text/plain"})

    def control(self, method, what, body):
        if what == "received" and method == "GET":
            with S.lock:
                return self.reply(200, S.received)
        return self.error(404, "no such control route")


if __name__ == "__main__":
    standin.serve(Handler, S)
