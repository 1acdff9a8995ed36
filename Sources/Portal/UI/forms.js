// Forms and their errors: an error box, the REST API's or the UI's own error
// shown next to the field it names, and a submit that is busy meanwhile.

import { h } from "./dom.js";

/** An empty error box for a form; `showError` fills it. */
export function errorBox() {
  return h("div", { class: "form-error", role: "alert", tabindex: "-1", hidden: true });
}

/**
 * Shows an error in `box`: its message, and the field it names; the control
 * of that field inside `scope` (found by data-field) is marked and focused.
 */
export function showError(box, error, scope) {
  clearErrors(box, scope);
  box.append(h("strong", {}, error.code && error.code !== "local" ? `${error.code}: ` : "", error.message));
  if (error.field) box.append(h("div", { class: "error-field" }, "Field: ", h("code", {}, error.field)));
  box.hidden = false;
  const control = scope && error.field ? findField(scope, error.field) : null;
  if (control) {
    control.setAttribute("aria-invalid", "true");
    control.closest(".field, fieldset")?.append(h("small", { class: "field-error" }, error.message));
    (control.matches("input, select, textarea, button") ? control : control.querySelector("input, select, textarea"))?.focus();
  } else {
    box.focus();
  }
}

export function clearErrors(box, scope) {
  box.replaceChildren();
  box.hidden = true;
  if (!scope) return;
  for (const el of scope.querySelectorAll(".field-error")) el.remove();
  for (const el of scope.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

/** The control for `name` (`endpoints[1].key`), else for its parent (`subscribe[0]` -> `subscribe`). */
function findField(scope, name) {
  while (name) {
    const el = scope.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (el) return el;
    const shorter = name.replace(/(\[\d+\]|\.[^.[\]]*)$/, "");
    if (shorter === name) return null;
    name = shorter;
  }
  return null;
}

/**
 * Runs a form's submit: disables its submit button meanwhile and shows any
 * error in the form's box.
 */
export function onSubmit(form, box, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = form.querySelector("button[type=submit]");
    clearErrors(box, form);
    // Busy while the portal works (a login's password hash takes a moment).
    if (submit) {
      submit.disabled = true;
      submit.classList.add("busy");
      submit.setAttribute("aria-busy", "true");
    }
    try {
      await action();
    } catch (error) {
      showError(box, error, form);
    } finally {
      if (submit) {
        submit.disabled = false;
        submit.classList.remove("busy");
        submit.removeAttribute("aria-busy");
      }
    }
  });
}
