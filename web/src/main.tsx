// Entry point: strings first, then the pages (which register their routes), then the shell.
import "./style.css";
import "./locales/en";
import "./locales/de";
import "./pages";
import { mount } from "./app";

mount(document.getElementById("app")!);
