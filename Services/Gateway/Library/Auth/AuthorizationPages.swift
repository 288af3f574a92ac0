import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import WardenContracts

/// The authorization server's pages: plain server-rendered HTML and CSS, no JavaScript, readable
/// on a phone. Every page forbids framing (`frame-ancestors 'none'`, `X-Frame-Options: DENY`),
/// scripts and caching; forms post only to the gateway (and, for the consent page, redirect on to
/// the client's redirect URI, which `form-action` names).
package enum AuthorizationPages {
    static let style = """
        body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f5f7;color:#1d2330;margin:0;padding:16px}
        main{max-width:420px;margin:8vh auto;background:#fff;border-radius:12px;padding:24px 24px 16px;box-shadow:0 1px 4px rgba(0,0,0,.12)}
        h1{font-size:1.3em;margin:0 0 12px}p{line-height:1.45}label{display:block;margin:12px 0 4px;font-weight:600}
        input[type=text],input[type=email],input[type=password]{width:100%;box-sizing:border-box;padding:10px;font-size:1em;border:1px solid #b8bfcc;border-radius:6px}
        button{font-size:1em;padding:10px 18px;border-radius:6px;border:1px solid #2f5bd3;background:#2f5bd3;color:#fff;margin:16px 8px 8px 0;cursor:pointer}
        button.secondary{background:#fff;color:#2f5bd3}.error{background:#fdecec;color:#8a1c1c;padding:10px;border-radius:6px}
        .muted{color:#5b6475;font-size:.9em}ul{padding-left:20px}code{word-break:break-all}table{width:100%;border-collapse:collapse}
        td{padding:8px 4px;border-top:1px solid #e3e6eb;vertical-align:top}td form button{margin:0}
        """

    /// `text` HTML-escaped.
    package static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// A name fit to show: control and formatting characters removed (no bidirectional tricks), at most `limit` characters.
    package static func plain(_ text: String, limit: Int) -> String {
        String(
            String.UnicodeScalarView(
                text.unicodeScalars.filter { ![.control, .format, .lineSeparator, .paragraphSeparator].contains($0.properties.generalCategory) })
        )
        .trimmingCharacters(in: .whitespaces).prefix(limit).description
    }

    static func hidden(_ fields: [(String, String)]) -> String {
        fields.map { #"<input type="hidden" name="\#(escape($0.0))" value="\#(escape($0.1))">"# }.joined(separator: "\n")
    }

    /// A page. `formTargets` are the origins its forms may lead to besides the gateway's own; nil
    /// leaves `form-action` out (the sign-in page, whose forms lead through the gateway to an
    /// identity provider or a client not known when it is rendered).
    static func page(_ status: HTTPResponse.Status, title: String, body: String, formTargets: [String]? = [], headers: HTTPFields = [:]) -> Response {
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="referrer" content="no-referrer"><title>\(escape(title)) · Warden</title><style>\(style)</style></head>
            <body><main>
            \(body)
            </main></body></html>
            """
        var fields: HTTPFields = [
            .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
            HTTPField.Name("Content-Security-Policy")!:
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                + (formTargets.map { "form-action 'self'\($0.map { " " + $0 }.joined()); " } ?? "") + "frame-ancestors 'none'; base-uri 'none'",
            HTTPField.Name("X-Frame-Options")!: "DENY", HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            HTTPField.Name("Referrer-Policy")!: "no-referrer",
        ]
        for field in headers { fields.append(field) }
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func error(_ status: HTTPResponse.Status, _ title: String, _ message: String) -> Response {
        page(status, title: title, body: "<h1>\(escape(title))</h1>\n<p class=\"error\">\(escape(message))</p>")
    }

    /// The sign-in form: email and password, and the org when several exist and the client does
    /// not name one. `carried` are the authorization request's parameters (or where to go next).
    /// `provider`: the org's identity provider (its host), when it signs in there; `offerProviders`:
    /// the org is not known yet, so both ways are offered.
    static func signIn(
        _ status: HTTPResponse.Status = .ok, clientName: String?, askOrg: Bool, org: String, email: String, error: String?, csrf: String,
        carried: [(String, String)], provider: String? = nil, offerProviders: Bool = false, headers: HTTPFields = [:]
    ) -> Response {
        let intro =
            clientName.map { "<p><strong>\(escape($0))</strong> asks to use Warden's tools for you. Sign in to continue.</p>" }
            ?? "<p>Sign in to manage the apps connected to your account.</p>"
        let orgField =
            askOrg
            ? #"<label for="org">Organization</label><input type="text" id="org" name="org" value="\#(escape(org))" autocomplete="organization" required>"#
            : hidden([("org", org)])
        let federated = """
            <form method="post" action="/oauth/sign-in/federated">
            \(hidden(carried + [("csrf", csrf)]))
            \(askOrg ? #"<label for="org-sso">Organization</label><input type="text" id="org-sso" name="org" value="\#(escape(org))" required>"# : hidden([("org", org)]))
            <button type="submit" id="federated">\(provider.map { "Continue with \(escape($0))" } ?? "Sign in with your organization's identity provider")</button>
            </form>
            """
        if let provider, !askOrg {
            let body = """
                <h1>Sign in to Warden</h1>
                \(intro)
                \(error.map { "<p class=\"error\">\(escape($0))</p>" } ?? "")
                <p class="muted">Your organization (\(escape(org))) signs in at \(escape(provider)).</p>
                \(federated)
                """
            return page(status, title: "Sign in", body: body, formTargets: nil, headers: headers)
        }
        let body = """
            <h1>Sign in to Warden</h1>
            \(intro)
            \(error.map { "<p class=\"error\">\(escape($0))</p>" } ?? "")
            <form method="post" action="/oauth/sign-in">
            \(hidden(carried + [("csrf", csrf)]))
            \(orgField)
            <label for="email">Email</label><input type="email" id="email" name="email" value="\(escape(email))" autocomplete="username" required>
            <label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
            <button type="submit">Sign in</button>
            </form>
            \(offerProviders ? "<p class=\"muted\">Or, if your organization signs in at its own identity provider:</p>" + federated : "")
            """
        return page(status, title: "Sign in", body: body, formTargets: nil, headers: headers)
    }

    /// The consent page: who asks (the client's name and its redirect URI's host), for what, as whom.
    static func consent(
        client: AuthorizationClient, redirectURI: String, scopes: [String], session: SignInSession, carried: [(String, String)]
    ) -> Response {
        let host = URLComponents(string: redirectURI)?.host ?? URLComponents(string: redirectURI)?.scheme ?? redirectURI
        let kind =
            switch client.kind {
            case .registered: "registered by your organization's admins"
            case .dynamic: "registered itself with Warden; check that you started this"
            case .metadataDocument: "described by \(URLComponents(string: client.id)?.host ?? client.id)"
            }
        // Refresh tokens are issued whether or not offline_access was asked for: the page says so always.
        let scopeItems =
            scopes.compactMap { scope in
                switch scope {
                case "mcp": "<li>Use the tools, resources and prompts your organization lets you use through Warden, as you</li>"
                case "offline_access": nil
                default: "<li><code>\(escape(scope))</code></li>"
                }
            }.joined() + "<li>Stay connected when you are away, until you withdraw this (for at most 90 days)</li>"
        let body = """
            <h1>Allow \(escape(client.name))?</h1>
            <p><strong>\(escape(client.name))</strong> (\(escape(kind))) will be able to:</p>
            <ul>\(scopeItems)</ul>
            <p class="muted">It will send you back to <strong>\(escape(host))</strong>. Signed in as \(escape(session.email)) (\(escape(session.org))).
            Warden never gives it your passwords or the credentials of the tools it calls. You can withdraw this at <code>/oauth/consents</code>.</p>
            <form method="post" action="/oauth/consent">
            \(hidden(carried + [("csrf", session.csrf)]))
            <button type="submit" name="decision" value="approve">Allow</button>
            <button type="submit" name="decision" value="deny" class="secondary">Deny</button>
            </form>
            """
        return page(.ok, title: "Allow \(client.name)", body: body, formTargets: formTarget(redirectURI).map { [$0] } ?? [])
    }

    /// The origin a redirect URI's navigation needs in `form-action` (a loopback URI on any port).
    static func formTarget(_ redirectURI: String) -> String? {
        guard let components = URLComponents(string: redirectURI), let scheme = components.scheme?.lowercased() else { return nil }
        guard scheme == "http" || scheme == "https", let host = components.host else { return "\(scheme):" }
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(scheme)://\(bracketed)" + (components.port.map { ":\($0)" } ?? "")
    }

    /// The user's connected apps, each with a button that withdraws its consent.
    static func consents(_ list: ConsentList, session: SignInSession, notice: String?) -> Response {
        let rows = list.consents.map { consent in
            let when = Date(timeIntervalSince1970: TimeInterval(consent.grantedAt)).formatted(.iso8601.year().month().day())
            return """
                <tr><td><strong>\(escape(consent.clientName))</strong><br><span class="muted">\(escape(consent.scopes.joined(separator: " "))) · since \(when)</span></td>
                <td><form method="post" action="/oauth/consents">\(hidden([("csrf", session.csrf), ("client_id", consent.clientID)]))
                <button type="submit" class="secondary">Withdraw</button></form></td></tr>
                """
        }.joined()
        let body = """
            <h1>Connected apps</h1>
            <p class="muted">Signed in as \(escape(session.email)) (\(escape(session.org))).</p>
            \(notice.map { "<p>\(escape($0))</p>" } ?? "")
            \(list.consents.isEmpty ? "<p>No app is connected to your account.</p>" : "<table>\(rows)</table>")
            <form method="post" action="/oauth/sign-out">\(hidden([("csrf", session.csrf)]))<button type="submit" class="secondary">Sign out</button></form>
            """
        return page(.ok, title: "Connected apps", body: body)
    }
}
