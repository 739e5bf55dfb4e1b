import { useEffect, useRef, useState } from "react";
import L from "./leaflet";
import "./heatPlugin";
import { ApiError, filterParams, isQueryProblem, queryString, type Client, type FlaggedLogin, type Filters, type Heatmap, type Journey, type LeveledPlace, type Problem, type TopLocations } from "./api";
import { ago, count, escapeHtml, percent } from "./format";
import { arcPieces, bboxParam, cellBounds } from "./geo";
import { binSpots, HEAT_GRADIENT, intensity, legendTicks, visibleMax } from "./heat";
import { levelName } from "./places";
import { journeyPopup, type JourneyView } from "./journeys";
import { worldShapes } from "./worldShapes";
import { ARC_COLOURS } from "./legend";
import { MapLegend } from "./MapLegend";

interface Props {
  client: Client;
  filters: Filters;
  arcs: boolean;
  tileUrl: string | null;
  tileAttribution: string;
  focus: LeveledPlace | null;
  /** A journey chosen in the flagged list: drawn and opened on the map. */
  journey: FlaggedLogin | null;
  onProblem: (problem: Problem | null) => void;
}

type Status = "loading" | "ready" | "empty" | "error";

// The heat's blobs, in pixels; leaflet.heat sums what falls in squares of half their sum.
const HEAT_RADIUS = 16;
const HEAT_BLUR = 12;
// Refetch once the map has stopped moving, not on every frame of a drag.
const SETTLE_MS = 250;

export function MapView({ client, filters, arcs, tileUrl, tileAttribution, focus, journey, onProblem }: Props) {
  const element = useRef<HTMLDivElement>(null);
  const map = useRef<L.Map | null>(null);
  const heat = useRef<L.HeatLayer | null>(null);
  const arcLayer = useRef<L.LayerGroup | null>(null);
  const chosenLayer = useRef<L.LayerGroup | null>(null);
  const [view, setView] = useState(0);
  const [status, setStatus] = useState<Status>("loading");
  const [grid, setGrid] = useState<{ cellDeg: number; cells: number; zoom: number; total: number; max: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const cellDeg = useRef(8);
  // The click handler is bound once; it reads the filters in force when clicked.
  const filtersRef = useRef(filters);
  filtersRef.current = filters;

  // The map, once.
  useEffect(() => {
    if (!element.current) return;
    const m = L.map(element.current, { center: [25, 10], zoom: 2, minZoom: 1, maxZoom: 12, worldCopyJump: false, keyboard: true, attributionControl: true });
    if (tileUrl) L.tileLayer(tileUrl, { attribution: tileAttribution, maxZoom: 19 }).addTo(m);
    // Country shapes get a pane of their own below the overlay pane (z-index 400), where
    // leaflet.heat draws its canvas: sharing the overlay pane, the opaque land fills could
    // end up above the heat and hide every cell over land.
    m.createPane("countries").style.zIndex = "350";
    L.geoJSON(worldShapes(), {
      pane: "countries",
      interactive: false,
      style: { color: "#7c8b99", weight: 0.6, fillColor: tileUrl ? "transparent" : "#e9eef2", fillOpacity: tileUrl ? 0 : 1 },
    }).addTo(m);
    m.attributionControl.addAttribution("Countries: Natural Earth via world-atlas");
    // maxZoom 0: leaflet.heat divides every point by 2^(maxZoom - zoom), which at the world
    // view made each cell ~1/1000 of its intensity and only piles of overlapping cells showed.
    // The server aggregates cells per zoom already, so each is drawn at its own intensity.
    heat.current = L.heatLayer([], { radius: HEAT_RADIUS, blur: HEAT_BLUR, maxZoom: 0, max: 1, minOpacity: 0.35, gradient: HEAT_GRADIENT }).addTo(m);
    arcLayer.current = L.layerGroup().addTo(m);
    chosenLayer.current = L.layerGroup().addTo(m);
    let timer: number | undefined;
    m.on("moveend", () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(() => setView((v) => v + 1), SETTLE_MS);
    });
    m.on("click", (e: L.LeafletMouseEvent) => void cellPopup(m, e.latlng));
    // Keyboard users: arrows pan, +/- zoom (Leaflet), Enter opens the popup of the centre cell.
    m.getContainer().addEventListener("keydown", (e) => {
      if (e.key === "Enter" && e.target === m.getContainer()) void cellPopup(m, m.getCenter());
    });
    map.current = m;
    return () => {
      window.clearTimeout(timer);
      m.remove();
      map.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [tileUrl]);

  // Cells for the current view and filters.
  useEffect(() => {
    const m = map.current;
    if (!m) return;
    const controller = new AbortController();
    const b = m.getBounds();
    const zoom = m.getZoom();
    const params = { ...filterParams(filters), zoom, bbox: bboxParam({ south: b.getSouth(), west: b.getWest(), north: b.getNorth(), east: b.getEast() }) };
    setStatus("loading");
    client
      .get<Heatmap>(`/api/v1/analytics/heatmap${queryString(params)}`, controller.signal)
      .then((data) => {
        cellDeg.current = data.cell_deg;
        // Scaled against the busiest cell in view, not in the world: zoomed into a quiet
        // region, its top places are still the hottest colour.
        const spots = binSpots(
          data.cells.map(([lat, lon, weight]) => ({ ...m.latLngToContainerPoint([lat, lon]), weight })),
          (HEAT_RADIUS + HEAT_BLUR) / 2,
        );
        const max = visibleMax(spots.map((s) => [s.x, s.y, s.weight] as const));
        heat.current?.setLatLngs(
          spots.map((s) => {
            const at = m.containerPointToLatLng([s.x, s.y]);
            return [at.lat, at.lng, intensity(s.weight, max)] as L.HeatLatLngTuple;
          }),
        );
        setGrid({ cellDeg: data.cell_deg, cells: data.cells.length, zoom, total: data.total_weight, max });
        setStatus(data.cells.length ? "ready" : "empty");
        setError(null);
        onProblem(null);
      })
      .catch((e) => {
        if (controller.signal.aborted) return;
        heat.current?.setLatLngs([]);
        setStatus("error");
        // A bad search is said once, under the search box (the filter bar shows it).
        setError(e instanceof ApiError ? (isQueryProblem(e.problem) ? null : e.problem.detail) : "The server cannot be reached.");
        if (e instanceof ApiError) onProblem(e.problem);
      });
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, filters, view]);

  // Suspicious-travel arcs.
  useEffect(() => {
    const layer = arcLayer.current;
    if (!layer) return;
    layer.clearLayers();
    if (!arcs) return;
    const controller = new AbortController();
    const { by: _by, basis: _basis, ...rest } = filters;
    client
      .get<{ items: Journey[] }>(`/api/v1/analytics/suspicious-travel${queryString({ ...filterParams({ ...rest, by: "events", basis: "all" }), limit: 300 })}`, controller.signal)
      .then((data) => {
        for (const j of data.items) layer.addLayer(arc(j, j.origin, j.destination, 2));
      })
      .catch(() => undefined);
    return () => controller.abort();
  }, [client, filters, arcs]);

  // Fly to a place chosen in the top-10.
  useEffect(() => {
    const m = map.current;
    if (!m || !focus || focus.lat == null || focus.lon == null) return;
    m.flyTo([focus.lat, focus.lon], Math.max(m.getZoom(), 6), { duration: 0.6 });
    L.popup().setLatLng([focus.lat, focus.lon]).setContent(placePopup([focus], levelName(focus.level, focus))).openOn(m);
  }, [focus]);

  // Draw the journey chosen in the flagged list, above the others, and open its popup.
  useEffect(() => {
    const m = map.current;
    const layer = chosenLayer.current;
    if (!m || !layer) return;
    layer.clearLayers();
    if (!journey?.origin || !journey.destination) return;
    const line = arc(journey, journey.origin, journey.destination, 4);
    layer.addLayer(line);
    m.fitBounds(line.getBounds(), { padding: [40, 40], maxZoom: 6 });
    line.openPopup(line.getCenter());
  }, [journey]);

  async function cellPopup(m: L.Map, at: L.LatLng) {
    const cell = cellBounds(at.lat, at.lng, cellDeg.current);
    const popup = L.popup().setLatLng(at).setContent("<p>Loading…</p>").openOn(m);
    try {
      const params = { ...filterParams(filtersRef.current), level: "city", limit: 5, bbox: bboxParam(cell) };
      const data = await client.get<TopLocations>(`/api/v1/analytics/top-locations${queryString(params)}`);
      popup.setContent(data.items.length ? placePopup(data.items.map((p) => ({ ...p, level: "city" as const })), "Places in this cell") : "<p>No sign-ins from here.</p>");
    } catch (e) {
      popup.setContent(`<p>${escapeHtml(e instanceof ApiError ? e.problem.detail : "Failed to load.")}</p>`);
    }
  }

  return (
    <section className="map-panel" aria-label="Sign-in heatmap">
      <div
        ref={element}
        className="map"
        data-testid="map"
        data-status={status}
        data-cell-deg={grid?.cellDeg}
        data-cells={grid?.cells}
        data-zoom={grid?.zoom}
        data-total={grid?.total}
        data-max={grid?.max}
        tabIndex={0}
        aria-label="Map: arrow keys pan, + and - zoom, Enter shows the places at the centre"
      />
      <div className="map-status" aria-live="polite">
        {status === "loading" && <span className="badge">Loading…</span>}
        {status === "empty" && <span className="badge">No sign-ins match these filters here.</span>}
        {status === "error" && error && <span className="badge error">{error}</span>}
        {status === "ready" && grid && (
          <span className="badge muted">
            {count(grid.cells)} cells of {grid.cellDeg}°
          </span>
        )}
      </div>
      <MapLegend unit={filters.basis === "last_login" || filters.by === "users" ? "users" : "sign-ins"} ticks={status === "ready" && grid ? legendTicks(grid.max) : []} arcs={arcs} />
    </section>
  );

  function placePopup(items: LeveledPlace[], title: string): string {
    const now = new Date();
    const rows = items
      .map((p) => `<tr><td>${escapeHtml(levelName(p.level, p))}</td><td class="num">${count(p.count)}</td><td class="num">${percent(p.share)}</td><td>${ago(p.last_seen_at, now)}</td></tr>`)
      .join("");
    return `<div class="popup"><strong>${escapeHtml(title)}</strong><table><thead><tr><th>Place</th><th>Count</th><th>Share</th><th>Last seen</th></tr></thead><tbody>${rows}</tbody></table></div>`;
  }
}

type Point = { lat: number; lon: number };

/** A journey's great-circle arc the short way round, coloured by verdict, with its popup.
 * One that crosses the antimeridian is drawn in two pieces, off one edge of the map and back
 * in at the other (one polyline, so one popup and one click target). */
function arc(j: JourneyView, from: Point, to: Point, weight: number): L.Polyline {
  const line = L.polyline(arcPieces([from.lat, from.lon], [to.lat, to.lon]), {
    color: j.verdict === "impossible" ? ARC_COLOURS.impossible : ARC_COLOURS.suspicious,
    weight,
    opacity: 0.8,
    className: `arc arc-${j.verdict}`,
    // A click on an arc is the arc's: bubbling on, the map's own click would open the
    // popup of the cell under it in its place.
    bubblingMouseEvents: false,
  });
  return line.bindPopup(journeyPopup(j));
}
