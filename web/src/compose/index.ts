// Compose, mail actions and keyboard shortcuts: the one import pages.ts
// needs (strings registered, shortcuts installed). Owned by h-compose.
import "./compose.css";
import { register } from "../i18n";
import en from "../locales/compose.en";
import de from "../locales/compose.de";
import { installKeys } from "../keys";

register("en", en);
register("de", de);
installKeys();

export { ComposeButton, openCompose, isComposeOpen } from "./compose";
export type { ComposeOptions } from "./compose";
export { act, ActionBar, mailboxes, roleMailbox } from "../mail/actions";
export { showHelp } from "../keys";
