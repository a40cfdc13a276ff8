import NIOCore
import NIOHTTP1

/// The dashboard's HTML and style sheet, written here and served from the binary (no build step,
/// nothing fetched from elsewhere). The script is in `DashboardAssets+Script.swift`.
enum DashboardAssets {
    /// `GET /dashboard/assets/{name}`.
    static func asset(named name: String) -> HTTPResponse? {
        switch name {
        case "dashboard.js":
            return HTTPResponse(
                status: .ok, contentType: "text/javascript; charset=utf-8", body: .init(string: script))
        case "dashboard.css":
            return HTTPResponse(status: .ok, contentType: "text/css; charset=utf-8", body: .init(string: styleSheet))
        default:
            return nil
        }
    }

    /// `&`, `<`, `>`, `"` and `'` as entities.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// The start of both pages, up to the open `<head>`'s own links; the empty icon keeps the browser
    /// from asking for `/favicon.ico`.
    private static func documentHead(title: String) -> String {
        #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="icon" href="data:,">
        <title>\#(escape(title))</title>
        """#
    }

    static func login(basePath: String, message: String?, offersPassword: Bool) -> String {
        let base = escape(basePath)
        let alert = message.map { #"<p class="alert" role="alert">\#(escape($0))</p>"# } ?? ""
        let password =
            offersPassword
            ? #"""
            <form method="post" action="\#(base)/login" class="card">
              <h2>Operator</h2>
              <label for="password">Dashboard password</label>
              <input id="password" name="password" type="password" autocomplete="current-password" required>
              <button type="submit">Log in to every app</button>
            </form>
            """# : ""
        return #"""
            \#(documentHead(title: "swift-reverb dashboard: log in"))
            <style>
            body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: #f3f4f6; color: #111827;
                   margin: 0; display: flex; min-height: 100vh; align-items: center; justify-content: center; }
            main { width: 22rem; }
            h1 { font-size: 1.3rem; margin: 0 0 1rem; }
            h2 { font-size: 1rem; margin: 0 0 .6rem; }
            .card { background: #fff; border: 1px solid #d1d5db; border-radius: 8px; padding: 1rem 1.2rem; margin-bottom: 1rem; }
            label { display: block; font-weight: 600; margin: .5rem 0 .2rem; }
            input { width: 100%; box-sizing: border-box; padding: .45rem .5rem; border: 1px solid #9ca3af; border-radius: 5px; font: inherit; }
            button { margin-top: .8rem; padding: .45rem .9rem; border: 0; border-radius: 5px; background: #1d4ed8; color: #fff; font: inherit; cursor: pointer; }
            button:focus-visible, input:focus-visible { outline: 3px solid #f59e0b; outline-offset: 1px; }
            .alert { background: #fee2e2; color: #991b1b; border: 1px solid #fca5a5; border-radius: 6px; padding: .5rem .7rem; }
            </style>
            </head>
            <body>
            <main>
            <h1>swift-reverb dashboard</h1>
            \#(alert)
            <form method="post" action="\#(base)/login" class="card">
              <h2>One app</h2>
              <label for="app_id">App id</label>
              <input id="app_id" name="app_id" autocomplete="username" required>
              <label for="secret">App secret</label>
              <input id="secret" name="secret" type="password" autocomplete="current-password" required>
              <button type="submit">Log in</button>
            </form>
            \#(password)
            </main>
            </body>
            </html>
            """#
    }

    static func page(basePath: String) -> String {
        let base = escape(basePath)
        return #"""
            \#(documentHead(title: "swift-reverb dashboard"))
            <link rel="stylesheet" href="\#(base)/assets/dashboard.css">
            <script src="\#(base)/assets/dashboard.js" defer></script>
            </head>
            <body data-base="\#(base)">
            <header>
              <h1>swift-reverb</h1>
              <label for="app-select">App</label>
              <select id="app-select"></select>
              <span id="stream-state" role="status" aria-live="polite">connecting…</span>
              <button id="logout" type="button">Log out</button>
            </header>
            <main>
            <section aria-labelledby="overview-title" class="panel wide">
              <h2 id="overview-title">Overview <small id="overview-scope"></small></h2>
              <div class="stats">
                <div class="stat"><span class="label">Connections</span><span class="value" id="stat-connections">–</span></div>
                <div class="stat"><span class="label">Occupied channels</span><span class="value" id="stat-channels">–</span></div>
                <div class="stat in"><span class="label">Messages in /s</span><span class="value" id="stat-in">–</span></div>
                <div class="stat out"><span class="label">Messages out /s</span><span class="value" id="stat-out">–</span></div>
                <div class="stat"><span class="label">API calls /s</span><span class="value" id="stat-http">–</span></div>
                <div class="stat"><span class="label">Dropped deliveries</span><span class="value" id="stat-dropped">–</span></div>
                <div class="stat"><span class="label">Slow-consumer closes</span><span class="value" id="stat-slow">–</span></div>
              </div>
              <div class="split">
                <figure>
                  <svg id="chart" viewBox="0 0 600 180" role="img" aria-label="Messages per second, last 5 minutes"></svg>
                  <figcaption><span class="key in"></span>in <span class="key out"></span>out, per second, last 5 minutes</figcaption>
                </figure>
                <div>
                  <h3>Nodes</h3>
                  <table id="nodes"><thead><tr><th>Node</th><th>Host</th><th>Uptime</th><th>Connections</th><th>Redis pub / sub</th><th>Queue</th></tr></thead><tbody></tbody></table>
                </div>
              </div>
            </section>
            <section aria-labelledby="debug-title" class="panel wide">
              <h2 id="debug-title">Debug console</h2>
              <div class="toolbar">
                <label for="filter-channel">Channel</label>
                <input id="filter-channel" placeholder="contains…">
                <label for="filter-kind">Type</label>
                <select id="filter-kind">
                  <option value="">all</option>
                  <option value="connection">connections</option>
                  <option value="subscription">subscriptions</option>
                  <option value="client_event">client events</option>
                  <option value="api_event">API events</option>
                  <option value="error">errors</option>
                </select>
                <button id="pause" type="button" aria-pressed="false">Pause</button>
                <button id="clear" type="button">Clear</button>
                <span id="debug-count" role="status"></span>
              </div>
              <div class="log-wrap">
                <table id="debug-log"><thead><tr><th>Time</th><th>Node</th><th>Type</th><th>Socket</th><th>Channel</th><th>Event</th><th>Details</th></tr></thead><tbody></tbody></table>
              </div>
            </section>
            <section aria-labelledby="channels-title" class="panel">
              <h2 id="channels-title">Channels</h2>
              <form id="channels-form" class="toolbar">
                <label for="channel-prefix">Prefix</label>
                <input id="channel-prefix" placeholder="presence-">
                <button type="submit">Refresh</button>
              </form>
              <table id="channels-list"><thead><tr><th>Channel</th><th>Kind</th><th>Subscribers</th></tr></thead><tbody></tbody></table>
              <pre id="channel-detail" tabindex="0" aria-label="Channel details"></pre>
            </section>
            <section aria-labelledby="send-title" class="panel">
              <h2 id="send-title">Send a test event</h2>
              <form id="send-form">
                <label for="send-channel">Channel</label>
                <input id="send-channel" required placeholder="my-channel">
                <label for="send-event">Event name</label>
                <input id="send-event" required placeholder="test-event">
                <label for="send-data">Data (JSON)</label>
                <textarea id="send-data" rows="4">{"hello": "world"}</textarea>
                <button id="send-submit" type="submit">Send</button>
              </form>
              <output id="send-result" for="send-channel send-event send-data" role="status"></output>
            </section>
            </main>
            </body>
            </html>
            """#
    }

    static let styleSheet = #"""
        :root { --in: #2563eb; --out: #16a34a; --border: #d1d5db; --muted: #6b7280; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background: #f3f4f6; color: #111827; }
        header { display: flex; gap: .6rem; align-items: center; padding: .6rem 1rem; background: #111827; color: #f9fafb; }
        header h1 { font-size: 1.1rem; margin: 0 1rem 0 0; }
        header select { min-width: 10rem; }
        #stream-state { margin-left: auto; font-size: .85rem; color: #d1d5db; }
        main { display: grid; grid-template-columns: 1fr 1fr; gap: .8rem; padding: .8rem; }
        .panel { background: #fff; border: 1px solid var(--border); border-radius: 8px; padding: .7rem .9rem; min-width: 0; }
        .wide { grid-column: 1 / -1; }
        h2 { font-size: 1rem; margin: 0 0 .5rem; }
        h2 small { color: var(--muted); font-weight: normal; }
        h3 { font-size: .9rem; margin: 0 0 .3rem; }
        .stats { display: grid; grid-template-columns: repeat(7, 1fr); gap: .5rem; margin-bottom: .6rem; }
        .stat { border: 1px solid var(--border); border-radius: 6px; padding: .4rem .6rem; }
        .stat .label { display: block; color: var(--muted); font-size: .78rem; }
        .stat .value { font-size: 1.45rem; font-variant-numeric: tabular-nums; }
        .stat.in .value { color: var(--in); } .stat.out .value { color: var(--out); }
        .split { display: grid; grid-template-columns: 3fr 2fr; gap: .8rem; }
        figure { margin: 0; }
        #chart { width: 100%; height: 180px; background: #fafafa; border: 1px solid var(--border); border-radius: 6px; }
        #chart .grid { stroke: #e5e7eb; stroke-width: 1; }
        #chart text { font-size: 10px; fill: var(--muted); }
        #chart .line-in { fill: none; stroke: var(--in); stroke-width: 2; }
        #chart .line-out { fill: none; stroke: var(--out); stroke-width: 2; }
        figcaption { font-size: .8rem; color: var(--muted); }
        .key { display: inline-block; width: .8rem; height: .25rem; margin: 0 .2rem .15rem .5rem; }
        .key.in { background: var(--in); } .key.out { background: var(--out); }
        table { border-collapse: collapse; width: 100%; font-size: .85rem; }
        th, td { text-align: left; padding: .2rem .4rem; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
        th { color: var(--muted); font-weight: 600; position: sticky; top: 0; background: #fff; }
        td.num { font-variant-numeric: tabular-nums; }
        .toolbar { display: flex; gap: .4rem; align-items: center; flex-wrap: wrap; margin-bottom: .4rem; }
        .log-wrap { max-height: 22rem; overflow: auto; border: 1px solid #e5e7eb; border-radius: 6px; }
        #debug-log td { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .78rem; }
        #debug-log td:last-child { word-break: break-all; }
        tr.k-error td { background: #fef2f2; color: #991b1b; }
        tr.k-api_event td:nth-child(3) { color: #7c3aed; }
        tr.k-client_event td:nth-child(3) { color: #0e7490; }
        tr.k-subscribed td:nth-child(3), tr.k-connection_opened td:nth-child(3) { color: #15803d; }
        tr.k-unsubscribed td:nth-child(3), tr.k-connection_closed td:nth-child(3) { color: #b45309; }
        label { font-weight: 600; }
        #send-form label { display: block; margin: .4rem 0 .15rem; }
        input, select, textarea { font: inherit; padding: .3rem .4rem; border: 1px solid #9ca3af; border-radius: 5px; }
        #send-form input, #send-form textarea { width: 100%; }
        textarea { font-family: ui-monospace, Menlo, monospace; }
        button { font: inherit; padding: .3rem .8rem; border: 0; border-radius: 5px; background: #1d4ed8; color: #fff; cursor: pointer; }
        button[aria-pressed="true"] { background: #b45309; }
        header button { background: #374151; }
        :focus-visible { outline: 3px solid #f59e0b; outline-offset: 1px; }
        button.link { background: none; color: #1d4ed8; padding: 0; text-decoration: underline; }
        #channel-detail { background: #f9fafb; border: 1px solid #e5e7eb; border-radius: 6px; padding: .5rem; min-height: 3rem; max-height: 14rem; overflow: auto; font-size: .8rem; }
        #send-result { display: block; margin-top: .5rem; font-family: ui-monospace, Menlo, monospace; font-size: .85rem; white-space: pre-wrap; }
        #send-result.ok { color: #15803d; } #send-result.bad { color: #b91c1c; }
        @media (max-width: 1100px) { main { grid-template-columns: 1fr; } .stats { grid-template-columns: repeat(4, 1fr); } .split { grid-template-columns: 1fr; } }
        """#
}
