// Small DOM helpers: h() builds elements, toast() and the dialog helpers. An `on*` attribute
// is a handler only when it is a function (never code in a string).

export function h(tag, attrs = {}, ...children) {
  const el = tag === 'svg' || attrs.svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false || k === 'svg') continue;
    if (k.startsWith('on')) { if (typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v); }
    // Styles through the CSSOM: the page's CSP allows no inline style attribute.
    else if (k === 'style') el.style.cssText = v;
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'readOnly') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) { if (typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v); }
    else if (k === 'style') el.style.cssText = v;
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

export function clear(el) { while (el.firstChild) el.firstChild.remove(); return el; }

let toastBox;
export function toast(message, kind = 'info', opts = {}) {
  if (!toastBox) {
    toastBox = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(toastBox);
  }
  const t = h('div', { class: `toast toast-${kind}` }, opts.title ? h('strong', {}, opts.title, ' ') : null, message);
  toastBox.append(t);
  setTimeout(() => t.remove(), opts.ms || 5000);
  return t;
}

/** A modal dialog; resolves with what `build(close)` passes to close(). */
export function dialog(title, build, opts = {}) {
  return new Promise((resolve) => {
    const d = h('dialog', { class: `dialog ${opts.class || ''}`, 'aria-label': title });
    const close = (v) => { d.close(); d.remove(); resolve(v); };
    d.addEventListener('cancel', (e) => { e.preventDefault(); close(undefined); });
    d.append(h('header', {}, h('h2', {}, title),
      h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close', onclick: () => close(undefined) }, '×')));
    const body = h('div', { class: 'dialog-body' });
    d.append(body);
    append(body, [build(close)]);
    document.body.append(d);
    d.showModal();
    const first = d.querySelector('[autofocus], input, select, textarea, .dialog-body button');
    if (first) first.focus();
  });
}

export function confirmDialog(title, message, ok = 'OK') {
  return dialog(title, (close) => h('div', {},
    h('p', {}, message),
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: () => close(false) }, 'Cancel'),
      h('button', { type: 'button', class: 'primary', onclick: () => close(true) }, ok))));
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('small', {}, hint) : null);
}

export function errorText(e) {
  if (!e) return '';
  const f = e.field ? ` (${e.field})` : '';
  return `${e.message}${f}`;
}

export function fmtDate(s) {
  if (!s) return '';
  const d = new Date(s);
  return d.toLocaleString();
}

export function download(name, text, type = 'application/json') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
