// Building the DOM: h() (text only, never HTML), labelled fields, buttons,
// links to views, and the toast.

/**
 * Creates an element. `props`: `class`, `text`, `on<event>` (a function,
 * attached with addEventListener), `dataset`, `value`/`checked`/`disabled`/...
 * (set as properties), anything else as an attribute. Children are nodes or
 * strings (always text nodes: never parsed as HTML).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [key, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (key === "class") el.className = v;
    else if (key === "text") el.textContent = v;
    else if (key === "dataset") Object.assign(el.dataset, v);
    else if (key === "value") value = v; // after the children: a <select> needs its options first
    else if (key.startsWith("on") && typeof v === "function") el.addEventListener(key.slice(2), v);
    // Properties; `checked` and `selected` stay attributes, so that form.reset() comes back to them.
    else if (["disabled", "hidden", "required", "readOnly", "multiple"].includes(key)) el[key] = true;
    else el.setAttribute(key, v === true ? "" : String(v));
  }
  append(el, children);
  if (value !== undefined) el.value = value;
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let uniqueIds = 0;
export const nextId = (prefix = "f") => `${prefix}${++uniqueIds}`;

/**
 * A labelled form control. `name` (optional) is the API's field name, kept
 * as data-field: an error that names the field is shown next to it.
 */
export function field(label, control, { hint, name, wide } = {}) {
  control.id ||= nextId();
  if (name) control.dataset.field = name;
  const hintEl = hint ? h("small", { class: "hint", id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: wide ? "field wide" : "field" }, h("label", { for: control.id }, label), control, hintEl);
}

export function button(label, onclick, { kind = "secondary", type = "button", ...props } = {}) {
  return h("button", { type, class: `btn ${kind}`, onclick, ...props }, label);
}

export function link(label, hash, props = {}) {
  return h("a", { href: `#${hash}`, ...props }, label);
}

export function toast(text, kind = "ok") {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.className = `toast ${kind}`;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}
