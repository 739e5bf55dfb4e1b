"""The world of bench/detection.py: real cities, the networks people sign in through, and the
address plan that makes every generated IP geolocate to its intended place and ASN.

Coordinates are the cities' real centres (to about 0.01°); country and subdivision codes are
ISO 3166; geoname ids are invented, one per country, subdivision and city, the same on every
run. Accuracy radii follow MaxMind's habits: fixed broadband 5-50 km, mobile carriers
100-500 km, VPN exits and data centres 20-100 km.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import random
from dataclasses import dataclass, field

EARTH_KM = 6371.0088
KM_PER_MILE = 1.609344

# name|country|subdivision|latitude|longitude|metro population (millions, rounded)
_CITIES = """
New York|US|NY|40.71|-74.01|19;Los Angeles|US|CA|34.05|-118.24|13;Chicago|US|IL|41.88|-87.63|9
Houston|US|TX|29.76|-95.37|7;Phoenix|US|AZ|33.45|-112.07|5;Philadelphia|US|PA|39.95|-75.17|6
San Antonio|US|TX|29.42|-98.49|2.6;San Diego|US|CA|32.72|-117.16|3.3;Dallas|US|TX|32.78|-96.80|7.6
San Francisco|US|CA|37.77|-122.42|4.7;Seattle|US|WA|47.61|-122.33|4;Denver|US|CO|39.74|-104.99|3
Boston|US|MA|42.36|-71.06|4.9;Atlanta|US|GA|33.75|-84.39|6;Miami|US|FL|25.76|-80.19|6
Washington|US|DC|38.91|-77.04|6.3;Minneapolis|US|MN|44.98|-93.27|3.7;Detroit|US|MI|42.33|-83.05|4.3
Portland|US|OR|45.52|-122.68|2.5;Las Vegas|US|NV|36.17|-115.14|2.3
Salt Lake City|US|UT|40.76|-111.89|1.3;Charlotte|US|NC|35.23|-80.84|2.7
Austin|US|TX|30.27|-97.74|2.4;Nashville|US|TN|36.16|-86.78|2;St. Louis|US|MO|38.63|-90.20|2.8
Kansas City|US|MO|39.10|-94.58|2.2;Pittsburgh|US|PA|40.44|-80.00|2.4;Orlando|US|FL|28.54|-81.38|2.7
Sacramento|US|CA|38.58|-121.49|2.4;Raleigh|US|NC|35.78|-78.64|1.4;Columbus|US|OH|39.96|-83.00|2.1
Indianapolis|US|IN|39.77|-86.16|2.1;Cleveland|US|OH|41.50|-81.69|2;Tampa|US|FL|27.95|-82.46|3.2
Baltimore|US|MD|39.29|-76.61|2.8;Ashburn|US|VA|39.04|-77.49|0.1;Toronto|CA|ON|43.65|-79.38|6.2
Montreal|CA|QC|45.50|-73.57|4.3;Vancouver|CA|BC|49.28|-123.12|2.6;Calgary|CA|AB|51.05|-114.07|1.5
Ottawa|CA|ON|45.42|-75.70|1.4;Edmonton|CA|AB|53.55|-113.49|1.4;Winnipeg|CA|MB|49.90|-97.14|0.8
Quebec City|CA|QC|46.81|-71.21|0.8;Mexico City|MX|CMX|19.43|-99.13|21
Guadalajara|MX|JAL|20.67|-103.35|5;Monterrey|MX|NLE|25.69|-100.32|5;Puebla|MX|PUE|19.04|-98.21|3
Sao Paulo|BR|SP|-23.55|-46.63|22;Rio de Janeiro|BR|RJ|-22.91|-43.17|13
Brasilia|BR|DF|-15.79|-47.88|4.7;Belo Horizonte|BR|MG|-19.92|-43.94|6
Curitiba|BR|PR|-25.43|-49.27|3.6;Porto Alegre|BR|RS|-30.03|-51.23|4.3;Salvador|BR|BA|-12.97|-38.50|4
Recife|BR|PE|-8.05|-34.88|4;Buenos Aires|AR|C|-34.60|-58.38|15;Cordoba|AR|X|-31.42|-64.18|1.6
Rosario|AR|S|-32.95|-60.64|1.3;Santiago|CL|RM|-33.45|-70.67|7;Bogota|CO|DC|4.71|-74.07|11
Medellin|CO|ANT|6.24|-75.58|4;Lima|PE|LIM|-12.05|-77.04|11;London|GB|ENG|51.51|-0.13|14
Manchester|GB|ENG|53.48|-2.24|2.8;Birmingham|GB|ENG|52.49|-1.89|2.9;Glasgow|GB|SCT|55.86|-4.25|1.8
Edinburgh|GB|SCT|55.95|-3.19|0.9;Leeds|GB|ENG|53.80|-1.55|1.9;Bristol|GB|ENG|51.45|-2.59|0.7
Cardiff|GB|WLS|51.48|-3.18|0.5;Belfast|GB|NIR|54.60|-5.93|0.7;Newcastle|GB|ENG|54.98|-1.61|0.8
Dublin|IE|L|53.35|-6.26|2;Cork|IE|M|51.90|-8.47|0.4;Paris|FR|IDF|48.86|2.35|12
Lyon|FR|ARA|45.76|4.84|2.3;Marseille|FR|PAC|43.30|5.37|1.9;Toulouse|FR|OCC|43.60|1.44|1.4
Bordeaux|FR|NAQ|44.84|-0.58|1.3;Lille|FR|HDF|50.63|3.06|1.2;Nantes|FR|PDL|47.22|-1.55|1
Strasbourg|FR|GES|48.57|7.75|0.8;Nice|FR|PAC|43.70|7.27|1;Rennes|FR|BRE|48.11|-1.68|0.7
Berlin|DE|BE|52.52|13.40|4.5;Hamburg|DE|HH|53.55|9.99|3.2;Munich|DE|BY|48.14|11.58|2.9
Cologne|DE|NW|50.94|6.96|2;Frankfurt|DE|HE|50.11|8.68|2.3;Stuttgart|DE|BW|48.78|9.18|2.8
Dusseldorf|DE|NW|51.23|6.77|1.5;Leipzig|DE|SN|51.34|12.37|1;Dresden|DE|SN|51.05|13.74|0.8
Hanover|DE|NI|52.38|9.73|1.3;Nuremberg|DE|BY|49.45|11.08|1.3;Bremen|DE|HB|53.08|8.80|1
Amsterdam|NL|NH|52.37|4.90|2.5;Rotterdam|NL|ZH|51.92|4.48|1.8;Utrecht|NL|UT|52.09|5.12|0.9
Eindhoven|NL|NB|51.44|5.47|0.8;Brussels|BE|BRU|50.85|4.35|2.1;Antwerp|BE|VAN|51.22|4.40|1.1
Zurich|CH|ZH|47.38|8.54|1.4;Geneva|CH|GE|46.20|6.14|0.6;Vienna|AT|9|48.21|16.37|2.9
Madrid|ES|MD|40.42|-3.70|6.7;Barcelona|ES|CT|41.39|2.17|5.6;Valencia|ES|VC|39.47|-0.38|1.6
Seville|ES|AN|37.39|-5.98|1.5;Bilbao|ES|PV|43.26|-2.93|1;Malaga|ES|AN|36.72|-4.42|1
Zaragoza|ES|AR|41.65|-0.89|0.8;Lisbon|PT|11|38.72|-9.14|2.9;Porto|PT|13|41.15|-8.61|1.7
Rome|IT|62|41.90|12.50|4.3;Milan|IT|25|45.46|9.19|4.3;Naples|IT|72|40.85|14.27|3
Turin|IT|21|45.07|7.69|1.7;Bologna|IT|45|44.49|11.34|1;Florence|IT|52|43.77|11.26|1
Palermo|IT|82|38.12|13.36|1;Venice|IT|34|45.44|12.32|0.8;Warsaw|PL|14|52.23|21.01|3.1
Krakow|PL|12|50.06|19.94|1.5;Wroclaw|PL|02|51.11|17.04|1.2;Gdansk|PL|22|54.35|18.65|1.1
Poznan|PL|30|52.41|16.93|1;Prague|CZ|10|50.08|14.44|2.7;Budapest|HU|BU|47.50|19.04|3
Bucharest|RO|B|44.43|26.10|2.3;Athens|GR|I|37.98|23.73|3.6;Stockholm|SE|AB|59.33|18.07|2.4
Gothenburg|SE|O|57.71|11.97|1;Oslo|NO|03|59.91|10.75|1.6;Copenhagen|DK|84|55.68|12.57|2
Helsinki|FI|18|60.17|24.94|1.5;Kyiv|UA|30|50.45|30.52|3.5;Istanbul|TR|34|41.01|28.98|15
Ankara|TR|06|39.93|32.86|5.5;Moscow|RU|MOW|55.76|37.62|17;Saint Petersburg|RU|SPE|59.93|30.34|5.5
Tel Aviv|IL|TA|32.09|34.78|4;Dubai|AE|DU|25.20|55.27|3.5;Riyadh|SA|01|24.71|46.68|7.5
Cairo|EG|C|30.04|31.24|21;Lagos|NG|LA|6.52|3.38|15;Abuja|NG|FC|9.08|7.40|3.5
Nairobi|KE|30|-1.29|36.82|5;Johannesburg|ZA|GP|-26.20|28.05|6;Cape Town|ZA|WC|-33.92|18.42|4.7
Durban|ZA|KZN|-29.86|31.02|3.5;Casablanca|MA|06|33.57|-7.59|4;Mumbai|IN|MH|19.08|72.88|21
Delhi|IN|DL|28.70|77.10|30;Bangalore|IN|KA|12.97|77.59|12;Hyderabad|IN|TG|17.39|78.49|10
Chennai|IN|TN|13.08|80.27|11;Kolkata|IN|WB|22.57|88.36|15;Pune|IN|MH|18.52|73.86|7
Ahmedabad|IN|GJ|23.02|72.57|8;Jaipur|IN|RJ|26.91|75.79|4;Karachi|PK|SD|24.86|67.01|16
Dhaka|BD|13|23.81|90.41|21;Beijing|CN|BJ|39.90|116.41|21;Shanghai|CN|SH|31.23|121.47|27
Guangzhou|CN|GD|23.13|113.26|14;Shenzhen|CN|GD|22.54|114.06|12;Chengdu|CN|SC|30.57|104.07|9
Wuhan|CN|HB|30.59|114.31|8;Hangzhou|CN|ZJ|30.27|120.16|7;Xi'an|CN|SN|34.34|108.94|7
Hong Kong|HK|HCW|22.32|114.17|7.5;Taipei|TW|TPE|25.03|121.57|7;Tokyo|JP|13|35.68|139.69|37
Osaka|JP|27|34.69|135.50|19;Nagoya|JP|23|35.18|136.91|9;Sapporo|JP|01|43.06|141.35|2.6
Fukuoka|JP|40|33.59|130.40|5.5;Sendai|JP|04|38.27|140.87|2.2;Seoul|KR|11|37.57|126.98|25
Busan|KR|26|35.18|129.08|3.4;Singapore|SG|01|1.35|103.82|5.9;Kuala Lumpur|MY|14|3.14|101.69|8
Bangkok|TH|10|13.76|100.50|11;Ho Chi Minh City|VN|SG|10.82|106.63|9;Hanoi|VN|HN|21.03|105.85|8
Jakarta|ID|JK|-6.21|106.85|30;Manila|PH|00|14.60|120.98|14;Sydney|AU|NSW|-33.87|151.21|5.3
Melbourne|AU|VIC|-37.81|144.96|5.1;Brisbane|AU|QLD|-27.47|153.03|2.6;Perth|AU|WA|-31.95|115.86|2.1
Adelaide|AU|SA|-34.93|138.60|1.4;Canberra|AU|ACT|-35.28|149.13|0.5;Auckland|NZ|AUK|-36.85|174.76|1.7
Wellington|NZ|WGN|-41.29|174.78|0.4
"""

COUNTRY_NAMES = {
    "US": "United States", "CA": "Canada", "MX": "Mexico", "BR": "Brazil", "AR": "Argentina",
    "CL": "Chile", "CO": "Colombia", "PE": "Peru", "GB": "United Kingdom", "IE": "Ireland",
    "FR": "France", "DE": "Germany", "NL": "Netherlands", "BE": "Belgium", "CH": "Switzerland",
    "AT": "Austria", "ES": "Spain", "PT": "Portugal", "IT": "Italy", "PL": "Poland",
    "CZ": "Czechia", "HU": "Hungary", "RO": "Romania", "GR": "Greece", "SE": "Sweden",
    "NO": "Norway", "DK": "Denmark", "FI": "Finland", "UA": "Ukraine", "TR": "Turkey",
    "RU": "Russia", "IL": "Israel", "AE": "United Arab Emirates", "SA": "Saudi Arabia",
    "EG": "Egypt", "NG": "Nigeria", "KE": "Kenya", "ZA": "South Africa", "MA": "Morocco",
    "IN": "India", "PK": "Pakistan", "BD": "Bangladesh", "CN": "China", "HK": "Hong Kong",
    "TW": "Taiwan", "JP": "Japan", "KR": "South Korea", "SG": "Singapore", "MY": "Malaysia",
    "TH": "Thailand", "VN": "Vietnam", "ID": "Indonesia", "PH": "Philippines",
    "AU": "Australia", "NZ": "New Zealand",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class City:
    index: int
    name: str
    country: str
    subdivision: str
    lat: float
    lon: float
    population: float

    @property
    def utc_offset_h(self) -> int:
        """Solar time zone: enough to put sign-ins in a person's waking hours."""
        return round(self.lon / 15)


def _cities() -> tuple[City, ...]:
    rows = [row for line in _CITIES.strip().splitlines() for row in line.split(";")]
    found = []
    for index, row in enumerate(rows):
        name, country, subdivision, lat, lon, population = row.split("|")
        assert country in COUNTRY_NAMES, country
        found.append(
            City(index, name, country, subdivision, float(lat), float(lon), float(population))
        )
    return tuple(found)


CITIES = _cities()
CITY_BY_NAME = {city.name: city for city in CITIES}
COUNTRIES = sorted(COUNTRY_NAMES)
SUBDIVISIONS = sorted({(c.country, c.subdivision) for c in CITIES})


def country_geoname_id(iso: str) -> int:
    return 6_100_000 + COUNTRIES.index(iso)


def subdivision_geoname_id(iso: str, code: str) -> int:
    return 7_200_000 + SUBDIVISIONS.index((iso, code))


def city_geoname_id(city: City) -> int:
    return 8_300_000 + city.index


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


_KM = [[haversine_km(a.lat, a.lon, b.lat, b.lon) for b in CITIES] for a in CITIES]


def km_between(a: City, b: City) -> float:
    return _KM[a.index][b.index]


@functools.cache
def cities_between(origin: City, low_km: float, high_km: float, same_country: bool) -> list[City]:
    return [
        c
        for c in CITIES
        if low_km <= km_between(origin, c) <= high_km
        and (not same_country or c.country == origin.country)
    ]


# --------------------------------------------------------------------------------------------
# Networks: who operates the addresses. One ASN per operator.


@dataclass(frozen=True, slots=True)
class Network:
    asn: int
    organization: str
    kind: str  # broadband | business | mobile | vpn | corporate | hosting


def home_isps(country: str) -> list[Network]:
    """Three residential broadband providers per country."""
    base = 11_000 + 10 * COUNTRIES.index(country)
    return [Network(base + i, f"{country} Broadband {i + 1}", "broadband") for i in range(3)]


def business_isp(country: str) -> Network:
    return Network(12_000 + COUNTRIES.index(country), f"{country} Business Fibre", "business")


def carriers(country: str) -> list[Network]:
    """Two mobile carriers per country, each one ASN for all its gateways."""
    base = 13_000 + 10 * COUNTRIES.index(country)
    return [Network(base + i, f"{country} Mobile {i + 1}", "mobile") for i in range(2)]


VPN_PROVIDER = Network(14_001, "Privacy Tunnel VPN", "vpn")
VPN_EXITS = ("Amsterdam", "Frankfurt", "London", "New York", "Los Angeles", "Zurich",
             "Stockholm", "Singapore", "Tokyo", "Toronto", "Miami", "Sydney")  # fmt: skip
HOSTING = [Network(15_001 + i, f"Cloud Hosting {i + 1}", "hosting") for i in range(6)]
PROXY_CITIES = ("Lagos", "Moscow", "Kyiv", "Bucharest", "Jakarta", "Ho Chi Minh City", "Dhaka",
                "Karachi", "Sao Paulo", "Cairo", "Manila", "Bangkok", "Istanbul", "Hanoi",
                "Ashburn", "Frankfurt", "Amsterdam", "Singapore", "Lima", "Bogota", "Casablanca",
                "Nairobi", "Hong Kong", "Kuala Lumpur", "Mexico City")  # fmt: skip


def corporate(index: int) -> Network:
    return Network(16_000 + index, f"Corporation {index + 1} Egress", "corporate")


# --------------------------------------------------------------------------------------------
# The address plan: one or more /24 per (place, network), each with its own record.


@dataclass(frozen=True, slots=True)
class Block:
    """One /24: where its addresses geolocate, with what radius, operated by whom."""

    network: ipaddress.IPv4Network
    city: City
    lat: float
    lon: float
    radius_km: int
    operator: Network


_RADII = {
    "broadband": (5, 10, 20, 50),
    "business": (5, 10, 20),
    "mobile": (100, 200, 500),
    "vpn": (20, 50, 100),
    "corporate": (20, 50, 100),
    "hosting": (20, 50, 100),
}


@dataclass(slots=True)
class AddressPlan:
    """Hands out public IPv4 addresses, a fresh /24 per (city, operator) as needed, from
    1.0.0.0 upwards (global unicast: the server never looks up private ranges)."""

    rng: random.Random
    blocks: list[Block] = field(default_factory=list)
    _open: dict[tuple[int, int], tuple[Block, int]] = field(default_factory=dict)
    _next: int = int(ipaddress.IPv4Address("1.0.0.0"))
    _by_prefix: dict[int, Block] = field(default_factory=dict)

    def _new_block(self, city: City, operator: Network) -> Block:
        while True:
            net = ipaddress.IPv4Network((self._next, 24))
            self._next += 256
            if net.is_global:
                break
        # A block sits at the city centre or a nearby suburb (as MaxMind's records do).
        jitter = 0.0 if operator.kind in ("mobile", "vpn", "hosting") else 0.08
        block = Block(
            net,
            city,
            round(city.lat + self.rng.uniform(-jitter, jitter), 4),
            round(city.lon + self.rng.uniform(-jitter, jitter), 4),
            self.rng.choice(_RADII[operator.kind]),
            operator,
        )
        self.blocks.append(block)
        self._by_prefix[int(net.network_address) >> 8] = block
        return block

    def address(self, city: City, operator: Network) -> str:
        """A new address (host .1-.254) at `city` on `operator`'s network."""
        key = (city.index, operator.asn)
        block, used = self._open.get(key) or (self._new_block(city, operator), 0)
        if used == 254:
            block, used = self._new_block(city, operator), 0
        self._open[key] = (block, used + 1)
        return str(block.network.network_address + used + 1)

    def pool(self, city: City, operator: Network, size: int) -> list[str]:
        return [self.address(city, operator) for _ in range(size)]

    def block_of(self, ip: str) -> Block:
        """The /24 an address handed out here belongs to."""
        return self._by_prefix[int(ipaddress.IPv4Address(ip)) >> 8]


def mph_between(a: Block, b: Block, seconds: float) -> float:
    """Miles per hour between the centres of two blocks, `seconds` apart (at least one)."""
    km = haversine_km(a.lat, a.lon, b.lat, b.lon)
    return km / KM_PER_MILE / (max(seconds, 1) / 3600)
