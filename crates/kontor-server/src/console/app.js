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

// A select marked data-autosubmit (the board's pipeline, the pipelines page's object) shows
// its choice at once; without the script, its form's button does.
document.addEventListener('change', function (e) {
  var t = e.target;
  if (t.hasAttribute && t.hasAttribute('data-autosubmit') && t.form) t.form.submit();
});

// Forms marked data-confirm (archiving a pipeline or a stage) ask in the page's dialog first.
// Without the script, the server asks on a page of its own.
(function () {
  var dialog = document.getElementById('confirm-dialog');
  var text = document.getElementById('confirm-text');
  if (!dialog || !text || typeof dialog.showModal !== 'function') return;
  var pending = null;
  document.addEventListener('submit', function (e) {
    var f = e.target;
    if (!f.hasAttribute || !f.hasAttribute('data-confirm')) return;
    e.preventDefault();
    pending = f;
    text.textContent = f.getAttribute('data-confirm');
    dialog.returnValue = '';
    dialog.showModal();
  });
  dialog.addEventListener('close', function () {
    var f = pending;
    pending = null;
    if (!f || dialog.returnValue !== 'confirm') return;
    var yes = document.createElement('input');
    yes.type = 'hidden';
    yes.name = 'confirm';
    yes.value = 'yes';
    f.appendChild(yes);
    f.submit();
  });
})();

// The board: a card dropped on another column posts its own "Move" form with that column's
// stage, and the board the server answers with (moved, or with the reason it was refused)
// replaces this one.
(function () {
  var area = document.getElementById('board-area');
  if (!area || !window.fetch || !window.DOMParser) return;
  var dragged = null;
  function column(e) {
    return e.target && e.target.closest ? e.target.closest('.board-column') : null;
  }
  function clearTargets() {
    area.querySelectorAll('.drop-target').forEach(function (c) { c.classList.remove('drop-target'); });
  }
  area.addEventListener('dragstart', function (e) {
    var card = e.target && e.target.closest ? e.target.closest('.board-card') : null;
    if (!card) return;
    dragged = card;
    card.classList.add('dragging');
    e.dataTransfer.effectAllowed = 'move';
    e.dataTransfer.setData('text/plain', card.getAttribute('data-id'));
  });
  area.addEventListener('dragend', function () {
    if (dragged) dragged.classList.remove('dragging');
    dragged = null;
    clearTargets();
  });
  area.addEventListener('dragover', function (e) {
    var col = column(e);
    if (!col || !dragged) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'move';
    if (!col.classList.contains('drop-target')) {
      clearTargets();
      col.classList.add('drop-target');
    }
  });
  area.addEventListener('dragleave', function (e) {
    var col = column(e);
    if (col && !col.contains(e.relatedTarget)) col.classList.remove('drop-target');
  });
  area.addEventListener('drop', function (e) {
    var col = column(e);
    var card = dragged;
    if (!col || !card) return;
    e.preventDefault();
    clearTargets();
    card.classList.remove('dragging');
    var stage = col.getAttribute('data-stage');
    if (stage === card.getAttribute('data-stage')) return;
    move(card, col, stage);
  });
  function move(card, col, stage) {
    var form = card.querySelector('form.move');
    if (!form) return;
    form.elements.stage.value = stage;
    col.querySelector('ol.cards').prepend(card);
    area.setAttribute('aria-busy', 'true');
    fetch(form.action, {
      method: 'POST',
      body: new URLSearchParams(new FormData(form)),
      credentials: 'same-origin',
    }).then(function (r) {
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, 'text/html');
      var fresh = doc.getElementById('board-area');
      if (!fresh) {
        // Not a board (the form expired, the record is gone): show that page as it is.
        document.documentElement.replaceWith(document.adoptNode(doc.documentElement));
        return;
      }
      area.replaceChildren.apply(area, Array.prototype.map.call(
        Array.prototype.slice.call(fresh.childNodes), function (n) { return document.adoptNode(n); }));
      area.removeAttribute('aria-busy');
    }).catch(function () {
      form.submit();
    });
  }
})();
