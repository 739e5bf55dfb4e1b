// leaflet.heat is a classic plugin: it extends the global `L`. This module makes Leaflet that
// global before the plugin loads (imports run in order), and is the one place both come from.
import L from "leaflet";

(window as unknown as { L: typeof L }).L = L;

export default L;
