// Small widgets several views share: the action badges of an endpoint and a
// Copy button.

import { h, button } from "./dom.js";

export function actionBadges(actions) {
  return actions.map((a) => h("span", { class: `badge action-${a}` }, a));
}

/** A Copy button: the clipboard API, else the text is selected for Ctrl+C. */
export function copyButton(getText, element, label, kind = "secondary") {
  const b = button(label, async () => {
    const text = getText();
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied ✓";
    } catch {
      // No clipboard (plain http on another host, or denied): select the text.
      if (element instanceof HTMLTextAreaElement || element instanceof HTMLInputElement) element.select();
      else window.getSelection().selectAllChildren(element);
      let copied = false;
      try { copied = document.execCommand("copy"); } catch { copied = false; }
      b.textContent = copied ? "Copied ✓" : "Selected: press Ctrl+C";
    }
    setTimeout(() => { b.textContent = label; }, 2500);
  }, { kind: `${kind} copy` });
  return b;
}
