/// The dashboard page's script: plain JavaScript, no framework; the chart is drawn as SVG here.
/// Untrusted text (channel names, event data) only ever goes into `textContent`.
extension DashboardAssets {
    static let script = #"""
        'use strict';
        (function () {
          const base = document.body.dataset.base;
          const $ = (id) => document.getElementById(id);
          const MAX_ROWS = 500;
          const HISTORY = 300;
          let session = null;
          let app = null;
          let source = null;
          let paused = false;
          let held = [];
          let history = [];
          let dropped = 0;

          async function call(path, options) {
            const response = await fetch(base + path, Object.assign({ credentials: 'same-origin' }, options || {}));
            if (response.status === 401) { location.href = base + '/login'; throw new Error('session ended'); }
            return response;
          }

          function el(tag, text, className) {
            const node = document.createElement(tag);
            if (text !== undefined && text !== null) node.textContent = String(text);
            if (className) node.className = className;
            return node;
          }

          function uptime(seconds) {
            if (seconds === undefined || seconds === null) return '?';
            const h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
            return h > 0 ? h + 'h ' + m + 'm' : m > 0 ? m + 'm ' + s + 's' : s + 's';
          }

          // ---- overview -------------------------------------------------------------------------
          function renderOverview(overview) {
            if (overview.history) history = overview.history.slice(-HISTORY);
            else if (overview.latest) {
              if (!history.length || history[history.length - 1].time !== overview.latest.time) history.push(overview.latest);
              if (history.length > HISTORY) history.splice(0, history.length - HISTORY);
            }
            const latest = overview.latest || {};
            const set = (id, value) => { $(id).textContent = value === undefined ? '–' : value; };
            set('stat-connections', latest.connections);
            set('stat-channels', latest.channels);
            set('stat-in', latest.messages_in);
            set('stat-out', latest.messages_out);
            set('stat-http', latest.http_calls);
            set('stat-dropped', latest.dropped);
            set('stat-slow', latest.slow_consumer_closes);
            $('overview-scope').textContent = overview.app ? 'app ' + overview.app : 'every app';
            renderNodes(overview.nodes || []);
            drawChart();
          }

          function renderNodes(nodes) {
            const body = $('nodes').tBodies[0];
            body.replaceChildren();
            for (const node of nodes) {
              const row = document.createElement('tr');
              row.append(el('td', node.id ? node.id.slice(0, 8) + (node.self ? ' (this node)' : '') : 'this node'));
              row.append(el('td', node.host));
              row.append(el('td', uptime(node.uptime)));
              row.append(el('td', node.connections, 'num'));
              const link = (up) => up === undefined || up === null ? '–' : up ? 'up' : 'DOWN';
              row.append(el('td', link(node.publisher) + ' / ' + link(node.subscriber)));
              row.append(el('td', node.queue === undefined || node.queue === null ? '–' : node.queue, 'num'));
              body.append(row);
            }
          }

          function svg(tag, attributes) {
            const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
            for (const name in attributes) node.setAttribute(name, attributes[name]);
            return node;
          }

          function drawChart() {
            const chart = $('chart');
            const width = 600, height = 180, left = 40, bottom = 18, top = 8;
            const plotHeight = height - bottom - top, plotWidth = width - left - 4;
            let max = 1;
            for (const s of history) max = Math.max(max, Number(s.messages_in), Number(s.messages_out));
            const magnitude = Math.pow(10, Math.floor(Math.log10(max / 4)));
            max = 4 * Math.ceil(max / 4 / magnitude) * magnitude;
            chart.replaceChildren();
            for (let i = 0; i <= 4; i++) {
              const y = top + plotHeight * i / 4;
              chart.append(svg('line', { x1: left, x2: width - 4, y1: y, y2: y, class: 'grid' }));
              const label = svg('text', { x: left - 4, y: y + 3, 'text-anchor': 'end' });
              label.textContent = String(Math.round(max * (4 - i) / 4 * 10) / 10);
              chart.append(label);
            }
            for (const [text, x] of [['-5 min', left], ['now', width - 4]]) {
              const label = svg('text', { x: x, y: height - 4, 'text-anchor': x === left ? 'start' : 'end' });
              label.textContent = text;
              chart.append(label);
            }
            const line = (key, className) => {
              const points = history.map((s, i) => {
                const x = left + plotWidth * (HISTORY - history.length + i) / (HISTORY - 1);
                const y = top + plotHeight * (1 - Number(s[key]) / max);
                return x.toFixed(1) + ',' + y.toFixed(1);
              });
              chart.append(svg('polyline', { points: points.join(' '), class: className }));
            };
            line('messages_in', 'line-in');
            line('messages_out', 'line-out');
          }

          // ---- debug console ----------------------------------------------------------------------
          function kindGroup(kind) {
            if (kind === 'connection_opened' || kind === 'connection_closed') return 'connection';
            if (kind === 'subscribed' || kind === 'unsubscribed') return 'subscription';
            return kind;
          }

          function visible(row) {
            const channel = $('filter-channel').value.trim();
            const kind = $('filter-kind').value;
            if (kind && row.dataset.group !== kind) return false;
            if (channel && !row.dataset.channels.includes(channel)) return false;
            return true;
          }

          function details(event) {
            const parts = [];
            if (event.origin) parts.push('origin ' + event.origin);
            if (event.code !== undefined) parts.push('code ' + event.code);
            if (event.message) parts.push(event.message);
            if (event.data !== undefined) parts.push(event.data);
            return parts.join(' · ');
          }

          function addEvents(events) {
            const body = $('debug-log').tBodies[0];
            for (const event of events) {
              const row = document.createElement('tr');
              row.className = 'k-' + event.kind;
              row.dataset.kind = event.kind;
              row.dataset.group = kindGroup(event.kind);
              row.dataset.channels = (event.channels || []).join(' ');
              const time = new Date(Number(event.time));
              row.append(el('td', time.toLocaleTimeString() + '.' + String(time.getMilliseconds()).padStart(3, '0')));
              row.append(el('td', event.node ? event.node.slice(0, 8) : ''));
              row.append(el('td', event.kind.replace('_', ' ')));
              row.append(el('td', event.socket_id || ''));
              row.append(el('td', (event.channels || []).join(', ')));
              row.append(el('td', event.event || ''));
              row.append(el('td', details(event)));
              row.hidden = !visible(row);
              body.prepend(row);
            }
            while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
            updateCount();
          }

          function updateCount() {
            const rows = $('debug-log').tBodies[0].rows.length;
            let text = rows + ' shown (newest first, at most ' + MAX_ROWS + ')';
            if (paused) text += ' · paused, ' + held.length + ' waiting';
            if (dropped) text += ' · ' + dropped + ' dropped by the server';
            $('debug-count').textContent = text;
          }

          function refilter() {
            for (const row of $('debug-log').tBodies[0].rows) row.hidden = !visible(row);
          }

          // ---- stream ---------------------------------------------------------------------------
          function connect() {
            if (source) source.close();
            history = [];
            source = new EventSource(base + '/api/stream' + (app ? '?app=' + encodeURIComponent(app) : ''));
            source.addEventListener('open', () => { $('stream-state').textContent = 'live'; });
            source.addEventListener('error', () => { $('stream-state').textContent = 'reconnecting…'; });
            source.addEventListener('overview', (message) => renderOverview(JSON.parse(message.data)));
            source.addEventListener('debug', (message) => {
              const events = JSON.parse(message.data);
              if (paused) {
                held = held.concat(events).slice(-MAX_ROWS);
                updateCount();
              } else {
                addEvents(events);
              }
            });
            source.addEventListener('dropped', (message) => {
              dropped = JSON.parse(message.data).total;
              updateCount();
            });
          }

          // ---- channels -------------------------------------------------------------------------
          async function loadChannels() {
            if (!app) return;
            const prefix = $('channel-prefix').value.trim();
            const response = await call('/api/apps/' + encodeURIComponent(app) + '/channels?prefix=' + encodeURIComponent(prefix));
            const body = $('channels-list').tBodies[0];
            body.replaceChildren();
            const list = (await response.json()).channels || [];
            for (const channel of list) {
              const row = document.createElement('tr');
              const cell = document.createElement('td');
              const button = el('button', channel.name, 'link');
              button.type = 'button';
              button.addEventListener('click', () => showChannel(channel.name));
              cell.append(button);
              row.append(cell, el('td', channel.kind), el('td', channel.subscribers, 'num'));
              body.append(row);
            }
            if (!list.length) {
              const row = document.createElement('tr');
              const cell = el('td', 'No occupied channel' + (prefix ? ' starting with ' + prefix : '') + '.');
              cell.colSpan = 3;
              row.append(cell);
              body.append(row);
            }
          }

          async function showChannel(name) {
            const response = await call('/api/apps/' + encodeURIComponent(app) + '/channels/' + encodeURIComponent(name));
            $('channel-detail').textContent = JSON.stringify(await response.json(), null, 2);
            $('channel-detail').focus();
          }

          // ---- send -----------------------------------------------------------------------------
          async function send(submit) {
            submit.preventDefault();
            const result = $('send-result');
            const dataText = $('send-data').value;
            try { JSON.parse(dataText); } catch (error) {
              result.className = 'bad';
              result.textContent = 'Data is not valid JSON: ' + error.message;
              return;
            }
            if (!app) { result.className = 'bad'; result.textContent = 'Choose an app first.'; return; }
            const body = { name: $('send-event').value, channel: $('send-channel').value, data: dataText };
            const response = await call('/api/apps/' + encodeURIComponent(app) + '/events', {
              method: 'POST', body: JSON.stringify(body),
              headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf_token },
            });
            const text = await response.text();
            result.className = response.ok ? 'ok' : 'bad';
            result.textContent = (response.ok ? 'Sent: ' : 'Refused: ') + response.status + ' ' + text;
          }

          // ---- start ----------------------------------------------------------------------------
          async function start() {
            session = await (await call('/api/session')).json();
            const select = $('app-select');
            for (const id of session.apps) select.append(el('option', id));
            app = session.apps.length ? session.apps[0] : null;
            select.disabled = session.scope === 'app';
            select.addEventListener('change', () => {
              app = select.value;
              $('debug-log').tBodies[0].replaceChildren();
              held = [];
              dropped = 0;
              updateCount();
              connect();
              loadChannels();
            });
            $('filter-channel').addEventListener('input', refilter);
            $('filter-kind').addEventListener('change', refilter);
            $('pause').addEventListener('click', () => {
              paused = !paused;
              $('pause').setAttribute('aria-pressed', String(paused));
              $('pause').textContent = paused ? 'Resume' : 'Pause';
              if (!paused) { const waiting = held; held = []; addEvents(waiting); }
              updateCount();
            });
            $('clear').addEventListener('click', () => { $('debug-log').tBodies[0].replaceChildren(); updateCount(); });
            $('channels-form').addEventListener('submit', (submit) => { submit.preventDefault(); loadChannels(); });
            $('send-form').addEventListener('submit', send);
            $('logout').addEventListener('click', async () => {
              await call('/logout', { method: 'POST', headers: { 'X-CSRF-Token': session.csrf_token } });
              location.href = base + '/login';
            });
            updateCount();
            connect();
            loadChannels();
          }

          start();
        })();
        """#
}
