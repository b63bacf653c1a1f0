// Gatehouse console: progressive enhancement only (every page works without it). No inline script,
// no HTML built from data: text goes through textContent.
(function () {
  'use strict';
  var pendingG = false, gTimer = null;

  function typing(el) {
    return el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable);
  }

  document.addEventListener('keydown', function (e) {
    if (e.defaultPrevented || e.altKey || e.metaKey) return;
    var t = e.target;
    if ((e.ctrlKey) && (e.key === 's' || e.key === 'S') && t && t.id === 'source' && t.form) {
      e.preventDefault();
      t.form.requestSubmit ? t.form.requestSubmit() : t.form.submit();
      return;
    }
    if (e.ctrlKey || typing(t)) return;
    if (e.key === '/') {
      var f = document.querySelector('[data-focus-key="/"]');
      if (f) { e.preventDefault(); f.focus(); f.select && f.select(); }
      return;
    }
    if (pendingG) {
      pendingG = false;
      clearTimeout(gTimer);
      var link = document.querySelector('nav a[data-key="' + e.key.replace(/[^a-z]/g, '') + '"]');
      if (link) { e.preventDefault(); window.location.href = link.href; }
      return;
    }
    if (e.key === 'g') {
      pendingG = true;
      gTimer = setTimeout(function () { pendingG = false; }, 1500);
      return;
    }
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      var p = document.querySelector(e.key === 'ArrowRight' ? 'a[data-key-next]' : 'a[data-key-prev]');
      if (p) { window.location.href = p.href; }
    }
  });

  // Confirmation for destructive forms.
  document.addEventListener('submit', function (e) {
    var f = e.target;
    var msg = f && f.getAttribute && f.getAttribute('data-confirm');
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  // The script editor: put the caret on the syntax error.
  var src = document.getElementById('source');
  if (src && src.dataset.line) {
    var line = parseInt(src.dataset.line, 10), col = parseInt(src.dataset.column, 10) || 1;
    var lines = src.value.split('\n'), pos = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) pos += lines[i].length + 1;
    pos += Math.max(0, col - 1);
    src.focus();
    try { src.setSelectionRange(pos, pos + 1); } catch (err) { /* ignore */ }
  }

  // Live tail of the logs page: Server-Sent Events from /logs/stream (pushed when any instance
  // records events; the browser reconnects with Last-Event-ID), or polling /logs/tail every 2 s where
  // EventSource is missing. Text goes through textContent; at most 500 lines are kept.
  var tail = document.getElementById('tail');
  if (tail) {
    var after = parseInt(tail.dataset.after, 10) || 0;
    var live = document.getElementById('live');
    var state = document.getElementById('tail-state');
    var params = new URLSearchParams(window.location.search);
    params.delete('after');
    var say = function (text) { if (state) state.textContent = text; };
    var show = function (ev) {
      if (!ev || typeof ev.id !== 'number' || ev.id <= after) return;
      after = ev.id;
      var li = document.createElement('li');
      li.className = 'lvl-' + String(ev.level || '').replace(/[^a-z]/g, '');
      var time = document.createElement('time');
      time.textContent = String(ev.time || '').replace('T', ' ').replace(/\.\d+/, '');
      li.appendChild(time);
      var text = ev.kind === 'request'
        ? ' ' + ev.status + ' ' + ev.method + ' ' + ev.path + '  ' + ev.route + ' · ' + (ev.duration / 1e6).toFixed(1) + 'ms · ' + (ev.userId || '') + ' · ' + ev.requestId + ' · ' + ev.instance
        : ' ' + ev.level + ' ' + ev.source + ': ' + ev.message + ' ' + (ev.requestId || '');
      li.appendChild(document.createTextNode(text));
      tail.insertBefore(li, tail.firstChild);
      while (tail.children.length > 500) tail.removeChild(tail.lastChild);
    };
    var source = null;
    var follow = function () {
      if (source || (live && !live.checked)) return;
      params.set('after', String(after));
      source = new window.EventSource(tail.dataset.stream + '?' + params.toString());
      source.onopen = function () { say('Following (live).'); };
      source.onmessage = function (m) {
        try { show(JSON.parse(m.data)); } catch (err) { /* not an event */ }
      };
      source.addEventListener('end', function (m) {
        stop();
        say(m.data === 'session' ? 'Your session has ended: sign in again to follow.' : 'The server is restarting: reload to follow again.');
      });
      source.onerror = function () {
        // The browser reconnects by itself (with Last-Event-ID) unless the server refused the
        // stream (session ended, too many tails open).
        if (source && source.readyState === window.EventSource.CLOSED) {
          stop();
          say('Live tail stopped: reload the page to follow again.');
        } else {
          say('Reconnecting…');
        }
      };
    };
    var stop = function () { if (source) { source.close(); source = null; } };
    if (window.EventSource && tail.dataset.stream) {
      follow();
      if (live) live.addEventListener('change', function () {
        if (live.checked) { follow(); } else { stop(); say('Paused.'); }
      });
    } else if (window.fetch) {
      setInterval(function () {
        if (live && !live.checked) return;
        params.set('after', String(after));
        fetch(tail.dataset.tail + '?' + params.toString(), { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (events) { for (var i = events.length - 1; i >= 0; i--) show(events[i]); })
          .catch(function () { /* the next poll retries */ });
      }, 2000);
    }
  }
})();
