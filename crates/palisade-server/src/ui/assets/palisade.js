/* Palisade web UI: progressive enhancements only. Every page works without this script
   (forms post, links navigate); it adds confirmations, copy buttons, local-time tooltips
   and hides the SNMP fields that do not apply. Served from /ui/assets (script-src 'self'). */
(function () {
  'use strict';

  // Confirm destructive actions: <form data-confirm="Delete …?">.
  document.addEventListener('submit', function (e) {
    var f = e.target;
    var msg = f && f.getAttribute && f.getAttribute('data-confirm');
    if (msg && !window.confirm(msg)) {
      e.preventDefault();
    }
  }, true);

  function ready(fn) {
    if (document.readyState !== 'loading') { fn(); } else { document.addEventListener('DOMContentLoaded', fn); }
  }

  ready(function () {
    // Copy buttons next to once-shown secrets: <code data-copy data-copy-label="access key">.
    Array.prototype.forEach.call(document.querySelectorAll('[data-copy]'), function (el) {
      if (!navigator.clipboard) { return; }
      var b = document.createElement('button');
      b.type = 'button';
      b.className = 'secondary small';
      b.textContent = 'Copy';
      b.setAttribute('aria-label', 'Copy the ' + (el.getAttribute('data-copy-label') || 'value'));
      var status = document.createElement('span');
      status.setAttribute('role', 'status');
      status.className = 'muted';
      b.addEventListener('click', function () {
        navigator.clipboard.writeText(el.textContent.trim()).then(function () {
          status.textContent = ' Copied.';
        }, function () {
          status.textContent = ' Copy failed: select the text and copy it by hand.';
        });
      });
      el.insertAdjacentElement('afterend', status);
      el.insertAdjacentElement('afterend', b);
    });

    // Times are printed in UTC; the tooltip gives the browser's local time.
    Array.prototype.forEach.call(document.querySelectorAll('time[datetime]'), function (t) {
      var d = new Date(t.getAttribute('datetime'));
      if (!isNaN(d.getTime())) { t.title = d.toLocaleString(); }
    });

    // The add-device form: show only the SNMP fields of the chosen version.
    var version = document.getElementById('snmp-version');
    if (version) {
      var sync = function () {
        Array.prototype.forEach.call(document.querySelectorAll('[data-snmp]'), function (box) {
          var want = box.getAttribute('data-snmp');
          box.hidden = version.value !== want;
        });
      };
      version.addEventListener('change', sync);
      sync();
    }
  });
})();
