import { useEffect, useRef } from "react";
import type { Login } from "./api";
import { loginMarkers, MARKER_COLOURS } from "./admin";
import L from "./leaflet";
import { worldShapes } from "./worldShapes";

/** A small map of where one account's sign-ins came from, a dot per located login coloured by
 * its verdict (impossible, suspicious) or outcome (signed in, failed). */
export function LoginMap({ logins }: { logins: Login[] }) {
  const element = useRef<HTMLDivElement>(null);
  const map = useRef<L.Map | null>(null);
  const dots = useRef<L.LayerGroup | null>(null);

  useEffect(() => {
    if (!element.current) return;
    const m = L.map(element.current, { center: [25, 10], zoom: 1, minZoom: 1, maxZoom: 10, keyboard: true, attributionControl: true });
    L.geoJSON(worldShapes(), { interactive: false, style: { color: "#7c8b99", weight: 0.6, fillColor: "#e9eef2", fillOpacity: 1 } }).addTo(m);
    m.attributionControl.addAttribution("Countries: Natural Earth via world-atlas");
    dots.current = L.layerGroup().addTo(m);
    map.current = m;
    return () => {
      m.remove();
      map.current = null;
    };
  }, []);

  useEffect(() => {
    const m = map.current;
    const layer = dots.current;
    if (!m || !layer) return;
    layer.clearLayers();
    const markers = loginMarkers(logins);
    for (const marker of markers) {
      L.circleMarker([marker.lat, marker.lon], {
        radius: 7,
        color: "white",
        weight: 1.5,
        fillColor: MARKER_COLOURS[marker.kind],
        fillOpacity: 0.9,
        className: `login-marker login-marker-${marker.kind}`,
      })
        .bindTooltip(marker.title)
        .addTo(layer);
    }
    if (markers.length) m.fitBounds(L.latLngBounds(markers.map((p) => [p.lat, p.lon])), { padding: [30, 30], maxZoom: 4 });
  }, [logins]);

  const located = logins.filter((l) => l.place).length;
  return (
    <div className="login-map-wrap">
      <div
        ref={element}
        className="login-map"
        data-testid="login-map"
        data-markers={located}
        tabIndex={0}
        aria-label={`Map of ${located} located sign-ins: arrow keys pan, + and - zoom`}
      />
      <ul className="legend-inline" aria-label="Dot colours">
        {(["impossible", "suspicious", "ok", "failed"] as const).map((kind) => (
          <li key={kind}>
            <span className={`dot dot-${kind}`} aria-hidden="true" />
            {{ impossible: "Impossible travel", suspicious: "Suspicious travel", ok: "Signed in", failed: "Failed" }[kind]}
          </li>
        ))}
      </ul>
    </div>
  );
}
