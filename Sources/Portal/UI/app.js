// The portal's UI (a plain ES module, no build step).
