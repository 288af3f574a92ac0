/// The approvals inbox at `/approvals`: one page, its script and its style sheet, served from the
/// gateway under a Content-Security-Policy that allows nothing but these files and the approvals
/// API. The script builds every element with `textContent` (nothing the server sends is parsed as
/// HTML) and sends the approver token as a bearer header, never as a cookie: a page on another site
/// cannot make the browser decide anything (no ambient credential to forge a request with).
enum InboxAssets {
    static let page = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer">
        <title>Warden approvals</title>
        <link rel="stylesheet" href="/approvals/inbox.css">
        <script src="/approvals/inbox.js" defer></script>
        </head>
        <body>
        <header><h1>Warden approvals</h1><button id="signout" type="button" hidden>Sign out</button></header>
        <main>
        <section id="signin">
        <p>Sign in with your approver token (<code>warden user token --org ORG USER</code>).</p>
        <form id="signin-form" autocomplete="off">
        <label for="token">Approver token</label>
        <input id="token" name="token" type="password" required spellcheck="false">
        <button id="signin-button" type="submit">Sign in</button>
        </form>
        </section>
        <section id="inbox" hidden>
        <p id="who"></p>
        <ul id="requests"></ul>
        <p id="empty" hidden>No calls are waiting for you.</p>
        </section>
        <p id="status" role="status" aria-live="polite"></p>
        </main>
        </body>
        </html>

        """

    static let script = #"""
        "use strict";
        (() => {
          const api = "/approvals/v1";
          const key = "warden.approver";
          let token = sessionStorage.getItem(key) || "";
          let stream = null;
          const byId = (id) => document.getElementById(id);

          function say(text, failed) {
            const status = byId("status");
            status.textContent = text;
            status.className = failed ? "failed" : "";
          }

          async function call(method, path, body) {
            const headers = { "Authorization": "Bearer " + token };
            if (body !== undefined) headers["Content-Type"] = "application/json";
            const response = await fetch(api + path, {
              method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit", cache: "no-store"
            });
            const data = await response.json().catch(() => ({}));
            if (!response.ok) throw new Error(data.detail || ("HTTP " + response.status));
            return data;
          }

          function element(tag, className, text) {
            const node = document.createElement(tag);
            if (className) node.className = className;
            if (text !== undefined) node.textContent = text;
            return node;
          }

          function row(list, name, value) {
            list.append(element("dt", "", name), element("dd", "", value));
          }

          function card(request) {
            const item = element("li", "request");
            item.dataset.id = request.id;
            item.append(element("h2", "", request.tool));
            const facts = element("dl");
            row(facts, "Agent", request.agent);
            row(facts, "Acting for", request.user);
            row(facts, "Rule", request.rule);
            const approvals = request.votes.filter((vote) => vote.verdict === "approve").length;
            row(facts, "Approvals", approvals + " of " + request.needed);
            row(facts, "Expires", new Date(request.expiresAt).toLocaleString());
            item.append(facts);
            item.append(element("h3", "", "Arguments"));
            item.append(element("pre", "arguments", JSON.stringify(JSON.parse(request.arguments), null, 2)));
            if (request.modifiedArguments) {
              // Approving approves these: an approver changed what the call will run with.
              item.append(element("h3", "changed", "Runs with (changed by an approver)"));
              item.append(element("pre", "arguments modified", JSON.stringify(JSON.parse(request.modifiedArguments), null, 2)));
            }

            const reason = element("input", "reason");
            reason.placeholder = "Reason (the agent sees it)";
            reason.setAttribute("aria-label", "Reason for rejecting");
            const remember = element("select", "remember");
            remember.setAttribute("aria-label", "Remember this approval");
            for (const [label, seconds] of [["Just this call", ""], ["Remember 15 minutes", "900"], ["Remember 1 hour", "3600"], ["Remember 1 day", "86400"]]) {
              const option = element("option", "", label);
              option.value = seconds;
              remember.append(option);
            }
            const approve = element("button", "approve", "Approve");
            approve.type = "button";
            approve.addEventListener("click", () => {
              const body = { revision: request.revision };
              if (remember.value) body.rememberSeconds = Number(remember.value);
              decide(request.id, "approve", body);
            });
            const reject = element("button", "reject", "Reject");
            reject.type = "button";
            reject.addEventListener("click", () => decide(request.id, "reject", { reason: reason.value, revision: request.revision }));
            const actions = element("div", "actions");
            actions.append(remember, approve, reason, reject);
            item.append(actions);

            const modify = element("details", "modify");
            modify.append(element("summary", "", "Approve with other arguments"));
            const edited = element("textarea", "edited");
            edited.value = JSON.stringify(JSON.parse(request.modifiedArguments || request.arguments), null, 2);
            edited.setAttribute("aria-label", "Arguments to run the call with");
            const approveEdited = element("button", "approve-edited", "Approve with these arguments");
            approveEdited.type = "button";
            approveEdited.addEventListener("click", () => {
              let parsed;
              try { parsed = JSON.parse(edited.value); } catch (error) { return say("The arguments are not valid JSON: " + error.message, true); }
              decide(request.id, "approve", { arguments: parsed, revision: request.revision });
            });
            modify.append(edited, approveEdited);
            item.append(modify);
            return item;
          }

          async function refresh() {
            const list = await call("GET", "/requests?state=pending&limit=100");
            const items = byId("requests");
            items.replaceChildren(...list.requests.map(card));
            byId("empty").hidden = list.requests.length > 0;
          }

          async function decide(id, verdict, body) {
            try {
              const decided = await call("POST", "/requests/" + encodeURIComponent(id) + "/" + verdict, body);
              say(decided.state === "pending" ? "Approval recorded; it needs more approvers." : "The call was " + decided.state + ".");
              await refresh();
            } catch (error) {
              say(error.message, true);
            }
          }

          // Live updates: the event stream, read with fetch (an EventSource cannot send the token).
          async function follow() {
            const controller = new AbortController();
            stream = controller;
            while (stream === controller) {
              try {
                const response = await fetch(api + "/events", { headers: { "Authorization": "Bearer " + token }, credentials: "omit", signal: controller.signal });
                if (!response.ok) throw new Error("HTTP " + response.status);
                const reader = response.body.getReader();
                const decoder = new TextDecoder();
                for (;;) {
                  const { value, done } = await reader.read();
                  if (done) break;
                  const text = decoder.decode(value, { stream: true });
                  if (text.includes("event:") || text.includes("data:")) await refresh().catch(() => {});
                }
              } catch (error) {
                if (stream !== controller) return;
              }
              await new Promise((resolve) => setTimeout(resolve, 3000));
            }
          }

          async function enter() {
            try {
              await refresh();
            } catch (error) {
              sessionStorage.removeItem(key);
              token = "";
              byId("signin").hidden = false;
              byId("inbox").hidden = true;
              return say("Sign-in failed: " + error.message, true);
            }
            sessionStorage.setItem(key, token);
            byId("signin").hidden = true;
            byId("inbox").hidden = false;
            byId("signout").hidden = false;
            say("");
            follow();
          }

          document.addEventListener("DOMContentLoaded", () => {
            byId("signin-form").addEventListener("submit", (event) => {
              event.preventDefault();
              token = byId("token").value.trim();
              byId("token").value = "";
              enter();
            });
            byId("signout").addEventListener("click", () => {
              if (stream) stream.abort();
              stream = null;
              sessionStorage.removeItem(key);
              token = "";
              location.reload();
            });
            if (token) enter();
          });
        })();

        """#

    static let style = """
        :root { color-scheme: light dark; font-family: system-ui, sans-serif; }
        * { box-sizing: border-box; }
        body { margin: 0; }
        header { display: flex; align-items: center; justify-content: space-between; padding: 0.75rem 1rem; border-bottom: 1px solid #8884; }
        h1 { font-size: 1.2rem; margin: 0; }
        main { max-width: 44rem; margin: 0 auto; padding: 1rem; }
        label { display: block; margin-bottom: 0.25rem; }
        input, select, textarea, button { font: inherit; padding: 0.5rem; border-radius: 0.4rem; border: 1px solid #8888; max-width: 100%; }
        #token { width: 100%; margin-bottom: 0.5rem; }
        button { cursor: pointer; }
        ul#requests { list-style: none; padding: 0; margin: 0; }
        li.request { border: 1px solid #8886; border-radius: 0.6rem; padding: 0.75rem; margin-bottom: 1rem; }
        li.request h2 { font-size: 1.05rem; margin: 0 0 0.5rem; overflow-wrap: anywhere; }
        li.request h3 { font-size: 0.9rem; margin: 0.75rem 0 0.25rem; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 0.75rem; margin: 0; }
        dt { font-weight: 600; }
        dd { margin: 0; overflow-wrap: anywhere; }
        pre.arguments { white-space: pre-wrap; overflow-wrap: anywhere; background: #8881; padding: 0.5rem; border-radius: 0.4rem; margin: 0; }
        pre.modified { border-left: 4px solid #b54708; }
        h3.changed { color: #b54708; }
        .actions { display: flex; flex-wrap: wrap; gap: 0.5rem; margin-top: 0.75rem; }
        .actions .reason { flex: 1 1 10rem; min-width: 0; }
        button.approve, button.approve-edited { background: #1a7f37; color: white; border-color: #1a7f37; }
        button.reject { background: #b42318; color: white; border-color: #b42318; }
        details.modify { margin-top: 0.75rem; }
        textarea.edited { width: 100%; min-height: 8rem; display: block; margin: 0.5rem 0; font-family: ui-monospace, monospace; }
        #status.failed { color: #b42318; }

        """
}
