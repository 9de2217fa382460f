"""
What the site answers at all, in front of everything it serves:

    RequestGuard  wraps the site's root.  Refuses (400) a request that sends
                  Host, Origin, Content-Type or Authorization twice, or a
                  NUL in its path; (403) one whose Host is not the hub's
                  (DNS rebinding), a change request from a page of another
                  origin (cross-site); and (415) a body that is not JSON.

The guards decide from the request line and the headers only: the site
asks them again as soon as the headers are in, and a refusal is sent before
the body is read (L{statushub.web.limits}).
    OriginGuard   which browser origins may open the feed.

Who may do what once a request is let in is L{statushub.web.roles}.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable, Iterable, NamedTuple, Optional

from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from statushub.web.audit import Refusal, isChange


class Guard(Resource):
    """
    A resource in front of another: a request that L{refusal} answers gets
    that answer, every other one goes on to C{wrapped} and everything under
    it.  Children put on the guard are put on C{wrapped}.
    """

    def __init__(self, wrapped: IResource) -> None:
        super().__init__()
        self.wrapped = wrapped
        # a leaf is rendered with the rest of the path; so must its guard be
        self.isLeaf = getattr(wrapped, "isLeaf", False)

    def refusal(self, request: Request) -> Optional[IResource]:
        """
        The answer to a request that may not pass, else L{None}.
        """
        raise NotImplementedError()

    def getChildWithDefault(self, path: bytes, request: Request) -> IResource:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        return self.wrapped.getChildWithDefault(path, request)

    def render(self, request: Request) -> bytes:
        refused = self.refusal(request)
        return (self.wrapped if refused is None else refused).render(request)

    def putChild(self, path: bytes, child: IResource) -> None:
        self.wrapped.putChild(path, child)


# ---- host and origin, as parts ----------------------------------------------


class Authority(NamedTuple):
    """
    The host and port of a C{Host} header or of an origin.  C{host} is
    lowercase, an IPv6 address without its brackets.
    """

    host: str
    port: Optional[int]

    @property
    def isIPLiteral(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


_AUTHORITY = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._~%!$&'()*+,;=-]+))"
    r"(?::(?P<port>[0-9]{1,5}))?"
)


def parseAuthority(text: str) -> Optional[Authority]:
    """
    C{"host"}, C{"host:port"}, C{"[v6]"} or C{"[v6]:port"} as an
    L{Authority}; L{None} for anything else (no user info, no path, no bare
    IPv6 address).
    """
    match = _AUTHORITY.fullmatch(text)
    if match is None:
        return None
    port = int(match["port"]) if match["port"] else None
    if port is not None and port > 65535:
        return None
    if match["ipv6"] is not None:
        try:
            return Authority(str(ipaddress.IPv6Address(match["ipv6"])), port)
        except ValueError:
            return None
    return Authority(match["name"].lower(), port)


DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    """
    A web origin: scheme, host and port (the default port filled in).
    """

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Optional["Origin"]:
        """
        C{"http://host:port"} as an L{Origin}; L{None} for anything else
        (C{"null"}, a path, another scheme).
        """
        scheme, separator, rest = text.partition("://")
        scheme = scheme.lower()
        if not separator or scheme not in DEFAULT_PORTS:
            return None
        authority = parseAuthority(rest.rstrip("/"))
        if authority is None:
            return None
        return cls(scheme, authority.host, authority.port or DEFAULT_PORTS[scheme])

    def isAddressedBy(self, request: Request) -> bool:
        """
        Whether this is the origin the request was sent to: the host and
        port of its C{Host}.  The scheme is not compared: behind a proxy that
        ends TLS the hub sees C{http} for a page served as C{https}, and one
        host and port serves one scheme anyway.  A C{Host} without a port
        names the default port of the origin's scheme.
        """
        host = _header(request, b"host")
        authority = parseAuthority(host) if host is not None else None
        if authority is None:
            return False
        port = authority.port or DEFAULT_PORTS[self.scheme]
        return (self.host, self.port) == (authority.host, port)


def _header(request: Request, name: bytes) -> Optional[str]:
    value = request.getHeader(name)
    return None if value is None else value.decode("latin-1")


# ---- the policies -------------------------------------------------------------


class Hosts:
    """
    The names the hub answers to: any IP literal and C{localhost} (no
    rebinding attack can choose those), and the configured ones, with or
    without a port.  C{"*"} allows any.
    """

    def __init__(self, allowed: Iterable[str]) -> None:
        self._allowed = {name.lower() for name in allowed}

    def allows(self, host: Optional[str]) -> bool:
        if "*" in self._allowed:
            return True
        authority = parseAuthority(host) if host is not None else None
        if authority is None:
            return False
        if authority.isIPLiteral or authority.host == "localhost":
            return True
        return authority.host in self._allowed or host.lower() in self._allowed


class Origins:
    """
    The browser origins the hub trusts: its own (the C{Host} the request
    was sent to), and the configured ones.  C{"*"} trusts any.
    """

    def __init__(self, allowed: Iterable[str]) -> None:
        allowed = [origin.rstrip("/").lower() for origin in allowed]
        self._any = "*" in allowed
        self._allowed = {Origin.parse(origin) or origin for origin in allowed}

    def trusts(self, origin: str, request: Request) -> bool:
        if self._any:
            return True
        parsed = Origin.parse(origin)
        if parsed is not None and parsed.isAddressedBy(request):
            return True
        return (parsed or origin.rstrip("/").lower()) in self._allowed


# ---- the guards -------------------------------------------------------------

JSON_TYPE = "application/json"

#: headers a request may send once only
ONCE_ONLY = (b"host", b"origin", b"content-type", b"content-length", b"authorization")


class RequestGuard(Guard):
    """
    The site's root, guarded: see the module's docstring.

    @param identify: names the role of a request, for the audit line of a
        change request refused here.
    """

    def __init__(
        self,
        root: IResource,
        hosts: Hosts,
        origins: Origins,
        identify: Callable[[Request], str],
    ) -> None:
        super().__init__(root)
        self._hosts = hosts
        self._origins = origins
        self._identify = identify

    def refusal(self, request: Request) -> Optional[IResource]:
        for name in ONCE_ONLY:
            values = request.requestHeaders.getRawHeaders(name) or []
            if len(values) > 1:
                # which one counts differs between a proxy and the hub
                return self._refuse(
                    400,
                    f"the {name.decode('ascii').title()} header is sent {len(values)} "
                    "times: send it once",
                    request,
                )
        if b"\x00" in request.path or b"%00" in request.path:
            return self._refuse(400, "the path contains a NUL character (%00)", request)
        host = _header(request, b"host")
        if not self._hosts.allows(host):
            # a page on a name that resolves here (DNS rebinding), or a
            # request that names no host: nothing for it, not even an index
            return self._refuse(
                403,
                f"host {host!r} is not served here: the hub answers to IP addresses, "
                "localhost and the names in [server] allowed_hosts",
                request,
            )
        if isChange(request):
            crossSite = self._crossSite(request)
            if crossSite is not None:
                return self._refuse(403, crossSite, request)
        if hasBody(request):
            # A browser sends text/plain, a form or multipart across
            # origins without asking first (no CORS preflight); JSON it
            # never does.  Nothing here reads a body of another type.
            contentType = _header(request, b"content-type") or ""
            if contentType.partition(";")[0].strip().lower() != JSON_TYPE:
                return self._refuse(
                    415,
                    f"the body must be sent as Content-Type: {JSON_TYPE}, "
                    f"not {contentType or 'without a type'!r}",
                    request,
                )
        return None

    def _crossSite(self, request: Request) -> Optional[str]:
        """
        Why C{request}, a change, comes from a page of another site, if it does.
        """
        origin = _header(request, b"origin")
        if origin is not None:
            if self._origins.trusts(origin, request):
                return None
            return (
                f"cross-site request refused: a page of origin {origin!r} may not "
                "change anything here (allow it in [server] allowed_origins)"
            )
        if _header(request, b"sec-fetch-site") == "cross-site":
            return (
                "cross-site request refused: the browser says it comes from a page of "
                "another site (Sec-Fetch-Site: cross-site)"
            )
        return None

    def _refuse(self, code: int, text: str, request: Request) -> IResource:
        return Refusal(code, text, self._identify(request))


def hasBody(request: Request) -> bool:
    """
    Whether C{request} comes with a body, by its headers: known before the
    body is read (L{statushub.web.limits}).
    """
    if request.requestHeaders.hasHeader(b"transfer-encoding"):
        return True
    length = request.getHeader(b"content-length")
    return length is not None and length.strip(b"0") != b""


class OriginGuard(Guard):
    """
    Refuses a WebSocket upgrade from a browser page of another origin, unless
    that origin is allowed.  Programs that send no C{Origin} pass: the token,
    not the origin, is what keeps them out.
    """

    def __init__(self, wrapped: IResource, origins: Origins) -> None:
        super().__init__(wrapped)
        self._origins = origins

    def refusal(self, request: Request) -> Optional[IResource]:
        origin = _header(request, b"origin")
        if origin is None or self._origins.trusts(origin, request):
            return None
        return Refusal(403, f"origin {origin!r} is not allowed")
