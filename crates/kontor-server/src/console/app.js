// The console's scripts, served as one file so the Content-Security-Policy can forbid inline
// script. Every page works without them; each part does nothing on a page without its elements.
"use strict";

// The property search of the restore page and panel.
function kontorFilter(input) {
  var q = input.value.trim().toLowerCase();
  var root = input.closest('form') || document;
  root.querySelectorAll('.prop-choice').forEach(function (el) {
    el.hidden = q !== '' && el.getAttribute('data-search').indexOf(q) < 0;
  });
  root.querySelectorAll('fieldset.prop-group').forEach(function (g) {
    g.hidden = !g.querySelector('.prop-choice:not([hidden])');
  });
}

// Backups: "Create backup" asks in a dialog.
(function () {
  var link = document.getElementById('create-backup');
  var dialog = document.getElementById('confirm-backup');
  if (!link || !dialog || typeof dialog.showModal !== 'function') return;
  link.addEventListener('click', function (e) {
    e.preventDefault();
    dialog.showModal();
  });
})();

// The restore page without the panel: choosing an object reloads the properties at once, and
// the property search filters as one types.
(function () {
  var panel = document.getElementById('restore-panel');
  if (!panel) return;
  panel.addEventListener('change', function (e) {
    if (e.target.name === 'object' && e.target.form) e.target.form.submit();
  });
  panel.addEventListener('input', function (e) {
    if (e.target.hasAttribute('data-filter')) kontorFilter(e.target);
  });
  panel.querySelectorAll('.js-hide').forEach(function (el) { el.hidden = true; });
})();

// The backup list: "Restore" opens the panel as a <dialog> on the right, filled with the restore
// page's panel; choosing an object reloads it in place. "Review" leaves for the review.
(function () {
  var dialog = document.getElementById('restore-dialog');
  if (!dialog || typeof dialog.showModal !== 'function' || !window.fetch || !window.DOMParser) return;
  var body = dialog.querySelector('.panel-body');
  var title = document.getElementById('restore-dialog-title');
  function load(url) {
    dialog.setAttribute('aria-busy', 'true');
    return fetch(url, { credentials: 'same-origin' }).then(function (r) {
      return r.text().then(function (text) { return { ok: r.ok || r.status === 400, text: text }; });
    }).then(function (res) {
      var doc = new DOMParser().parseFromString(res.text, 'text/html');
      var panel = doc.getElementById('restore-panel');
      if (!res.ok || !panel) { window.location.href = url; return; }
      body.replaceChildren(document.adoptNode(panel));
      panel.querySelectorAll('.js-hide').forEach(function (el) { el.hidden = true; });
      dialog.removeAttribute('aria-busy');
      var first = panel.querySelector('[autofocus], select, input[type=search]');
      if (first) first.focus();
    }).catch(function () { window.location.href = url; });
  }
  function query(form) {
    var params = new URLSearchParams(new FormData(form));
    return form.action + (form.action.indexOf('?') < 0 ? '?' : '&') + params.toString();
  }
  document.addEventListener('click', function (e) {
    var a = e.target.closest ? e.target.closest('a[data-restore]') : null;
    if (!a) return;
    e.preventDefault();
    title.textContent = a.getAttribute('data-title') || 'Restore';
    body.textContent = 'Loading…';
    dialog.showModal();
    load(a.href);
  });
  dialog.addEventListener('change', function (e) {
    var f = e.target.form;
    if (e.target.name === 'object' && f && (f.getAttribute('method') || 'get').toLowerCase() === 'get') load(query(f));
  });
  dialog.addEventListener('submit', function (e) {
    var f = e.target;
    if ((f.getAttribute('method') || 'get').toLowerCase() !== 'get') return;
    e.preventDefault();
    load(query(f));
  });
  dialog.addEventListener('input', function (e) {
    if (e.target.hasAttribute('data-filter')) kontorFilter(e.target);
  });
  dialog.querySelector('.panel-close').addEventListener('click', function () { dialog.close(); });
})();
