// English strings of the shell (app.tsx, sign-in, shared formats).
import { register } from "../i18n";

register("en", {
  "app.loading": "Loading…",
  "app.retry": "Try again",
  "app.skip": "Skip to content",
  "app.nav": "Main",
  "app.language": "Deutsch",
  "app.signOut": "Sign out",
  "app.sessionEnded": "Your session has ended. Please sign in again.",
  "app.noPages": "Nothing to show.",
  "error.unknown": "Something went wrong; the hub gave no reason.",
  "error.network": "The hub cannot be reached. Check your connection and try again.",
  "signin.title": "Sign in to mailkeep",
  "signin.intro": "Use your user name and password on this hub.",
  "signin.user": "User name",
  "signin.password": "Password",
  "signin.submit": "Sign in",
  "signin.busy": "Signing in…",
  "signin.wrong": "Wrong user name or password.",
  "signin.tooMany": "Too many attempts. Wait a minute and try again.",
  "nav.mail": "Mail",
  "notices.label": "{n, one {# unread notice} other {# unread notices}}",
  "size.bytes": "{n} B",
  "size.kb": "{n} KB",
  "size.mb": "{n} MB",
});
