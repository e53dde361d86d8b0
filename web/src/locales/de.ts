// Deutsche Texte der Hülle (app.tsx, Anmeldung, gemeinsame Formate).
import { register } from "../i18n";

register("de", {
  "app.loading": "Wird geladen …",
  "app.retry": "Erneut versuchen",
  "app.skip": "Zum Inhalt springen",
  "app.nav": "Hauptnavigation",
  "app.language": "English",
  "app.signOut": "Abmelden",
  "app.sessionEnded": "Deine Sitzung ist abgelaufen. Bitte melde dich erneut an.",
  "app.noPages": "Nichts anzuzeigen.",
  "error.unknown": "Etwas ist schiefgegangen; der Hub hat keinen Grund genannt.",
  "error.network": "Der Hub ist nicht erreichbar. Prüfe die Verbindung und versuche es erneut.",
  "signin.title": "Bei mailkeep anmelden",
  "signin.intro": "Mit deinem Benutzernamen und Passwort auf diesem Hub.",
  "signin.user": "Benutzername",
  "signin.password": "Passwort",
  "signin.submit": "Anmelden",
  "signin.busy": "Anmeldung läuft …",
  "signin.wrong": "Benutzername oder Passwort ist falsch.",
  "signin.tooMany": "Zu viele Versuche. Warte eine Minute und versuche es erneut.",
  "nav.mail": "E-Mail",
  "notices.label": "{n, one {# ungelesener Hinweis} other {# ungelesene Hinweise}}",
  "size.bytes": "{n} B",
  "size.kb": "{n} KB",
  "size.mb": "{n} MB",
});
