// Create forms: a form is built once and kept across the redraws of its
// page (live updates must not wipe what the user typed), sends what it
// holds to the API and shows the API's error, which names the field,
// beside it.
import { h, errorBox } from './ui.js';

const kept = new Map();

// field is one labelled control. f: {name, label, type (text, number,
// select, file, checkbox, textarea), options ([value, text] pairs), value,
// placeholder, hint, required, step, min}. Its id is <form>-<name>.
function field(formId, f) {
  const id = `${formId}-${f.name}`;
  let input;
  if (f.type === 'select') {
    input = h('select', { id, name: f.name }, f.options.map(([v, t]) => h('option', { value: v, selected: v === f.value }, t)));
  } else if (f.type === 'textarea') {
    input = h('textarea', { id, name: f.name, rows: 2, placeholder: f.placeholder }, f.value || '');
  } else {
    input = h('input', {
      id, name: f.name, type: f.type || 'text', placeholder: f.placeholder, required: f.required, step: f.step, min: f.min,
      value: f.type === 'checkbox' || f.value === undefined ? null : String(f.value), checked: f.type === 'checkbox' && f.value,
    });
  }
  return h('label', { class: `field${f.type === 'checkbox' ? ' check' : ''}`, for: id },
    h('span', { class: 'field-label' }, f.label), input, f.hint ? h('span', { class: 'muted field-hint' }, f.hint) : null);
}

// values reads a form's controls by name: text trimmed, numbers as
// numbers (null when empty), checkboxes as booleans, files as File.
function values(form) {
  const out = {};
  for (const el of form.querySelectorAll('input, select, textarea')) {
    if (!el.name) continue;
    if (el.type === 'checkbox') out[el.name] = el.checked;
    else if (el.type === 'file') out[el.name] = el.files?.[0] || null;
    else if (el.type === 'number') out[el.name] = el.value === '' ? null : Number(el.value);
    else out[el.name] = el.value.trim();
  }
  return out;
}

// createForm is the form id (kept across redraws): a <details> titled
// title whose fields submit(values) sends; done(result, values) runs
// after a success (a redraw, or a move to the new object's page).
export function createForm({ id, title, fields, submit, done, note }) {
  if (kept.has(id)) return kept.get(id);
  const out = h('div', { class: 'form-out', id: `${id}-out`, 'aria-live': 'polite' });
  const button = h('button', { class: 'btn primary', type: 'submit', id: `${id}-submit` }, 'Create');
  const form = h('form', {
    id, class: 'create-form', novalidate: true,
    onsubmit: async (ev) => {
      ev.preventDefault();
      button.disabled = true;
      out.replaceChildren(h('span', { class: 'muted' }, 'Sending…'));
      const v = values(form);
      try {
        const r = await submit(v);
        out.replaceChildren(h('span', { class: 'ok-note', role: 'status' }, 'Created.'));
        done?.(r, v);
      } catch (err) {
        out.replaceChildren(errorBox(err, title));
      } finally {
        button.disabled = false;
      }
    },
  }, note ? h('p', { class: 'muted' }, note) : null, h('div', { class: 'fields' }, fields.map((f) => field(id, f))),
  h('div', { class: 'toolbar' }, button), out);
  const node = h('details', { class: 'create panel', id: `${id}-box` }, h('summary', {}, title), form);
  kept.set(id, node);
  return node;
}

// pairs reads "k=v, k2=v2" into an object; a pair without "=" is refused
// naming the field.
export function pairs(text, name) {
  const out = {};
  for (const part of (text || '').split(',')) {
    const p = part.trim();
    if (!p) continue;
    const i = p.indexOf('=');
    if (i <= 0) throw new Error(`${name}: "${p}" is not key=value`);
    out[p.slice(0, i).trim()] = p.slice(i + 1).trim();
  }
  return out;
}

// compact drops the empty strings, nulls and empty objects of a body, so
// the API applies its defaults to what the user left blank.
export function compact(o) {
  const out = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === '' || v === null || v === undefined) continue;
    if (typeof v === 'object' && !Array.isArray(v)) {
      const c = compact(v);
      if (Object.keys(c).length) out[k] = c;
      continue;
    }
    out[k] = v;
  }
  return out;
}
