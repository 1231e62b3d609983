"""What the service knows about media types and file names, as plain tables.

- :data:`SIGNATURE_TYPES`: the types the ``filetype`` library recognises by their bytes,
  under the names a client declares (:data:`ALIASES`). A ``type/*`` wildcard in
  UPLOAD_ALLOWED_TYPES admits only these: a subtype nobody can check (``image/x-foo``)
  needs an exact entry. It is a snapshot, so that signing never imports ``filetype``;
  tests/unit/test_media_types.py fails when the library's table changes.
- :data:`SCRIPTABLE_TYPES`: what a browser renders as a page or runs as script.
- :data:`DESKTOP_EXTENSIONS`: names that a desktop runs as a program (or mounts, or
  opens as a trusted page) when opened, with the types that stand for them. A stage
  accepts such a name only when it lists one of those types exactly.
"""

from __future__ import annotations

# What filetype answers -> what a client may declare for the same format.
ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/apng": "image/png",
    "audio/wav": "audio/x-wav",
    "audio/flac": "audio/x-flac",
    "image/vnd.microsoft.icon": "image/x-icon",
    "video/x-m4v": "video/mp4",
    "audio/x-m4a": "audio/mp4",
    "application/x-zip-compressed": "application/zip",
    "binary/octet-stream": "application/octet-stream",  # S3's type for an untyped upload
}

# filetype 1.2.0's types (``{normal(k.mime) for k in filetype.types}``).
_FILETYPE_TYPES = frozenset({
    "application/dicom", "application/epub+zip", "application/font-sfnt",
    "application/font-woff", "application/gzip", "application/msword",
    "application/octet-stream", "application/pdf", "application/postscript",
    "application/rtf", "application/vnd.ms-cab-compressed", "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint", "application/vnd.oasis.opendocument.presentation",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/wasm", "application/x-7z-compressed", "application/x-brotli",
    "application/x-bzip2", "application/x-compress", "application/x-deb",
    "application/x-executable", "application/x-google-chrome-extension", "application/x-lz4",
    "application/x-lzip", "application/x-lzop", "application/x-msdownload",
    "application/x-nintendo-nes-rom", "application/x-rar-compressed", "application/x-rpm",
    "application/x-shockwave-flash", "application/x-sqlite3", "application/x-tar",
    "application/x-unix-archive", "application/x-xz", "application/zip", "application/zstd",
    "audio/aac", "audio/amr", "audio/midi", "audio/mp4", "audio/mpeg", "audio/ogg",
    "audio/x-aiff", "audio/x-flac", "audio/x-wav", "image/avif", "image/bmp", "image/gif",
    "image/heic", "image/jpeg", "image/jpx", "image/png", "image/tiff",
    "image/vnd.adobe.photoshop", "image/vnd.dwg", "image/vnd.ms-photo", "image/webp",
    "image/x-canon-cr2", "image/x-icon", "image/x-xcf", "video/3gpp", "video/mp4",
    "video/mpeg", "video/quicktime", "video/webm", "video/x-flv", "video/x-matroska",
    "video/x-ms-wmv", "video/x-msvideo",
})  # fmt: skip
# ...and the other names of the same formats.
SIGNATURE_TYPES = _FILETYPE_TYPES | {a for a, same in ALIASES.items() if same in _FILETYPE_TYPES}

# Types a browser runs script from when it renders them (any "+xml" type is one too), or
# renders as a page: multipart/x-mixed-replace (Firefox), MHTML (multipart/related).
SCRIPTABLE_TYPES = frozenset({
    "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml",
    "text/javascript", "application/javascript", "application/ecmascript",
    "text/ecmascript", "application/x-javascript", "text/xsl", "application/xslt+xml",
    "multipart/x-mixed-replace", "multipart/related", "message/rfc822",
    "application/x-mimearchive",
})  # fmt: skip


def normal(media_type: str) -> str:
    """A media type's essence, lower-cased, under the name filetype answers for it."""
    essence = media_type.split(";", 1)[0].strip().lower()
    return ALIASES.get(essence, essence)


def scriptable(essence: str) -> bool:
    """Whether a browser may run script from content of this type, or render it as a
    page, when it is served inline from some origin."""
    return essence in SCRIPTABLE_TYPES or essence.endswith("+xml")


# Programs: what a wildcard never admits, even where filetype knows them by their bytes.
_WINDOWS_PROGRAM = ("application/x-msdownload", "application/vnd.microsoft.portable-executable",
                    "application/x-dosexec")  # fmt: skip
_BATCH = ("application/x-bat", "application/x-msdos-program")
_MHTML = ("message/rfc822", "multipart/related", "application/x-mimearchive")
# Extensions that run (or open as a trusted page) on Windows or with a Java runtime when
# a user double-clicks the download, and the types that stand for them.
DESKTOP_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "exe": _WINDOWS_PROGRAM, "dll": _WINDOWS_PROGRAM, "scr": _WINDOWS_PROGRAM,
    "com": _WINDOWS_PROGRAM, "pif": _WINDOWS_PROGRAM, "cpl": _WINDOWS_PROGRAM,
    "msi": ("application/x-msi", "application/x-ms-installer"),
    "bat": _BATCH, "cmd": _BATCH,
    "hta": ("application/hta",),
    "mht": _MHTML, "mhtml": _MHTML,
    "vbs": ("text/vbscript", "application/x-vbscript"),
    "vbe": ("text/vbscript.encode",),
    "jse": ("text/jscript.encode",),
    "wsf": ("application/x-ms-wsf",), "wsh": ("application/x-ms-wsh",),
    "ps1": ("application/x-powershell",), "psm1": ("application/x-powershell",),
    "msc": ("application/x-msc",),
    "lnk": ("application/x-ms-shortcut",),
    "reg": ("application/x-ms-regedit",),
    "jar": ("application/java-archive", "application/x-java-archive"),
    "js": ("text/javascript", "application/javascript"),  # Windows Script Host runs it
    "ws": ("application/x-ms-ws",), "wsc": ("application/x-ms-wsc",),
    "sct": ("text/scriptlet",),
    "msp": ("application/x-ms-msp",),
    "chm": ("application/vnd.ms-htmlhelp",),
    "url": ("application/internet-shortcut",), "scf": ("application/x-ms-scf",),
    "application": ("application/x-ms-application",),
    "appref-ms": ("application/x-ms-appref",),
    "settingcontent-ms": ("application/x-ms-settingcontent",),
    "library-ms": ("application/x-ms-library",),
    "appx": ("application/appx",), "msix": ("application/msix",),
    "appinstaller": ("application/appinstaller",),
    # Disk images: mounted on a double click, their files lose the download's mark.
    "iso": ("application/x-iso9660-image",), "img": ("application/x-raw-disk-image",),
    "vhd": ("application/x-vhd",), "vhdx": ("application/x-vhdx",),
}  # fmt: skip
PROGRAM_TYPES = frozenset(
    {t for types in DESKTOP_EXTENSIONS.values() for t in types}
    | {"application/x-executable", "application/x-shockwave-flash",
       "application/x-google-chrome-extension", "application/x-deb", "application/x-rpm",
       "application/wasm"}
)  # fmt: skip
# What a wildcard may admit: known by their bytes, neither untyped, a page nor a program.
WILDCARD_TYPES = frozenset(
    t for t in SIGNATURE_TYPES
    if t not in PROGRAM_TYPES and not scriptable(t) and normal(t) != "application/octet-stream"
)  # fmt: skip


def desktop_extension(name: str | None) -> str:
    """The extension of ``name`` as Windows would run it, if it is one of
    :data:`DESKTOP_EXTENSIONS`, else "". Invisible format characters (zero-width, bidi
    overrides) are dropped, and trailing dots and white space (any Unicode space), which
    Windows and browsers drop from a saved name, are stripped: ``invoice.hta.`` and
    ``invoice.hta\u00a0`` are ``hta``. Any path before the last separator is ignored."""
    base = saved_name(name)
    _, dot, ext = base.rpartition(".")
    ext = ext.lower()
    return ext if dot and ext in DESKTOP_EXTENSIONS else ""


def saved_name(name: str | None) -> str:
    """The last path segment of ``name`` as a desktop would save it: without format
    characters, trailing dots or white space."""
    if not name:
        return ""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if not base.isascii():
        import unicodedata  # only for names that need it: off the common path

        base = "".join(c for c in base if unicodedata.category(c) != "Cf")
    while base and (base[-1] == "." or base[-1].isspace()):
        base = base[:-1]
    return base
