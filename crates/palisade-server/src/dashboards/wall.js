/* Palisade wall screen: loads and refreshes one dashboard.
 *
 * On /wall the widget token is the address's fragment (/wall#palw_...): it is never sent in a
 * request line or a Referer; this script sends it only as `Authorization: Bearer` to
 * /santaba/rest/dashboard/wall. On /ui/dashboards/{id} the signed-in session's cookie is used.
 * ES5 and XMLHttpRequest only, for old TV browsers. No inline code: the page's CSP forbids it. */
(function () {
  'use strict';
  var main = document.getElementById('wall');
  if (!main) { return; }
  var title = document.getElementById('wall-title');
  var status = document.getElementById('wall-status');
  var clock = document.getElementById('wall-clock');
  var dashboardId = main.getAttribute('data-dashboard-id');
  var token = null;
  var every = 30;
  var lastOk = 0;

  function pad(n) { return n < 10 ? '0' + n : '' + n; }
  function hm(d) { return pad(d.getHours()) + ':' + pad(d.getMinutes()); }
  function localize(root) {
    var els = root.querySelectorAll('[data-ts]');
    for (var i = 0; i < els.length; i++) {
      var d = new Date(+els[i].getAttribute('data-ts'));
      if (isNaN(d.getTime())) { continue; }
      els[i].textContent = els[i].getAttribute('data-fmt') === 'dhm'
        ? pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hm(d) : hm(d);
    }
  }
  function tick() {
    if (clock) { clock.textContent = hm(new Date()); }
    if (status && lastOk && Date.now() - lastOk > 3 * every * 1000) {
      status.className = 'stale';
    }
  }
  function say(text, stale) {
    if (!status) { return; }
    status.textContent = text;
    status.className = stale ? 'stale' : '';
  }

  if (!dashboardId) {
    token = (window.location.hash || '').replace(/^#/, '');
    try { token = decodeURIComponent(token); } catch (e) { token = ''; }
    if (!/^palw_[0-9A-Za-z]{43}_[0-9A-Za-z]{6}$/.test(token)) {
      say('No widget token in this address: open /wall#<widget token>.', true);
      return;
    }
  }

  function schedule(seconds) { window.setTimeout(load, seconds * 1000); }

  function load() {
    var xhr = new XMLHttpRequest();
    var url = '/santaba/rest/dashboard/wall' + (dashboardId ? '?id=' + encodeURIComponent(dashboardId) : '');
    xhr.open('GET', url, true);
    xhr.setRequestHeader('Accept', 'application/json');
    if (token) { xhr.setRequestHeader('Authorization', 'Bearer ' + token); }
    xhr.timeout = 20000;
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4) { return; }
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      if (xhr.status === 200 && body) {
        if (title) { title.textContent = body.name; }
        document.title = body.name + ' · Palisade';
        main.innerHTML = body.html;
        localize(main);
        every = Math.max(10, Math.min(300, +body.refreshSeconds || 30));
        lastOk = Date.now();
        say('Updated ' + hm(new Date()), false);
        schedule(every);
      } else if (xhr.status === 401 || xhr.status === 403 || xhr.status === 404) {
        say('Not allowed (' + xhr.status + '): ' + ((body && body.errorMessage) || 'the token was revoked or the dashboard removed') + '. Retrying in 5 minutes.', true);
        schedule(300);
      } else {
        say('Cannot reach Palisade (' + (xhr.status || 'offline') + '); retrying.', true);
        schedule(every);
      }
    };
    xhr.send();
  }

  localize(main);
  tick();
  window.setInterval(tick, 10000);
  if (token) { load(); } else { lastOk = Date.now(); schedule(every); }
})();
