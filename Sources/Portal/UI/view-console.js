// An API's Test console tab: subscribe and publish with a token through the
// gateways, and watch the messages and events live.

import { h, field, button } from "./dom.js";
import { localError } from "./rest.js";
import { errorBox, showError, clearErrors } from "./forms.js";
import { gatewayUrls, workingTokenField, gatewayUrlsField } from "./gateway-settings.js";
import { ConsoleConnection } from "./console-connection.js";
import { messageList, eventLog, connectionState, endpointPicker } from "./console-panels.js";

export async function consoleTab(api, view) {
  await gatewayUrls();
  const messages = messageList();
  const events = eventLog();
  const connState = connectionState(() => connection.close());
  const connection = new ConsoleConnection(api.name, { onState: connState.show, onTrouble: connState.explain, log: events.log });
  view.onLeave(() => connection.close());

  const box = errorBox();
  const chips = h("ul", { class: "chips", id: "console-subscriptions", "aria-label": "Subscriptions" });
  const payload = h("textarea", { id: "console-payload", rows: "3", value: "hello from the portal", spellcheck: "false" });
  const publishResult = h("p", { class: "small", id: "console-publish-result", role: "status" });
  const publishNote = h("span", { class: "muted small" });
  const picker = endpointPicker(api, (endpoint) => {
    const allowed = endpoint.actions.includes("publish");
    publishButton.disabled = !allowed;
    publishNote.textContent = allowed ? "" : "This endpoint does not allow publish.";
  });

  const subscribe = async () => {
    if (!picker.selected().actions.includes("subscribe")) throw localError("This endpoint does not allow subscribe.");
    const endpoint = picker.concrete();
    const status = h("span", { class: "chip-state" }, "subscribing…");
    const chip = h("li", { class: "chip", dataset: { endpoint } }, h("code", {}, endpoint), " ", status);
    const subscription = await connection.subscribe(endpoint, {
      subscribed: (reply) => {
        status.textContent = "subscribed";
        chip.classList.add("live");
        events.log(`Subscribed to ${reply.endpoint}.`, "ok");
      },
      message: messages.add,
      replayed: (r) => events.log(`${endpoint}: replayed ${r.count} from ${r.source}; live now.`),
      gap: (n) => events.log(`${endpoint}: gap: ${n.message}`, "bad"),
      stale_epoch: (n) => events.log(`${endpoint}: ${n.message}`, "bad"),
      retry: (e) => events.log(`${endpoint}: ${e.code}: ${e.message}; retrying.`, "bad"),
      ended: (reason) => {
        chip.remove();
        events.log(...endedText(endpoint, reason));
      },
    });
    if (!subscription) return events.log(`Already subscribed to ${endpoint}.`);
    chip.append(button("×", () => subscription.unsubscribe(), { kind: "link small", "aria-label": `Unsubscribe from ${endpoint}` }));
    chips.append(chip);
  };

  const publish = async () => {
    const endpoint = picker.concrete();
    publishResult.className = "small muted";
    publishResult.textContent = `Publishing to ${endpoint}…`;
    try {
      const reply = await connection.publish(endpoint, payload.value);
      publishResult.className = "small ok-text";
      publishResult.textContent = `Published to ${reply.endpoint ?? endpoint}: partition ${reply.partition}, offset ${reply.offset}.`;
      events.log(`Published to ${endpoint} (offset ${reply.offset}).`, "ok");
    } catch (error) {
      publishResult.className = "small error-text";
      publishResult.textContent = `${error.code && error.code !== "local" ? `${error.code}: ` : ""}${error.message}`;
    }
  };

  /** Runs a console action; a missing token or a bad parameter shows in the box, by its field. */
  const run = (action) => async () => {
    clearErrors(box, panel);
    try {
      await action();
    } catch (error) {
      showError(box, error, panel);
    }
  };
  const publishButton = button("Publish", run(publish), { kind: "secondary", id: "console-publish" });

  const tokenField = workingTokenField(api);
  tokenField.querySelector("textarea").dataset.field = "token";
  // The connection on top (full width); below, the controls beside the live output.
  const panel = h("div", { class: "console-page" },
    h("section", { class: "card connect", "aria-label": "Connection" },
      h("div", { class: "grid connect-grid" }, tokenField, h("div", {}, gatewayUrlsField(), connState.element))),
    h("div", { class: "console" },
      h("div", { class: "console-controls" },
        h("section", { class: "card" }, h("h2", {}, "Subscribe"),
          picker.element, box,
          h("div", { class: "actions" }, button("Subscribe", run(subscribe), { kind: "primary", id: "console-subscribe" })),
          chips),
        h("section", { class: "card" }, h("h2", {}, "Publish a test message"),
          field("Message (text)", payload),
          h("div", { class: "actions" }, publishButton, publishNote), publishResult)),
      h("div", { class: "console-output" }, messages.element, events.element)));
  picker.refresh();
  return panel;
}

/** What the event log says when a subscription ends: [text, kind]. */
function endedText(endpoint, reason) {
  if (reason.code === "unsubscribed" || reason.code === "closed") return [`${endpoint}: unsubscribed.`, "info"];
  // A new API reaches the gateways at their next poll of the portal.
  const hint = reason.code === "invalid_endpoint" ? " (A new or changed API reaches the gateways at their next poll: try again in a moment.)" : "";
  return [`${endpoint}: ended (${reason.code})${reason.message ? `: ${reason.message}` : ""}.${hint}`, "bad"];
}
