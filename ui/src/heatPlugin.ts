import "./leaflet";
import "leaflet.heat";
