"""``python -m adapters.portal_standin``: the portal stand-in on its own, for manual tries."""

from __future__ import annotations

import argparse
import io
import threading

from PIL import Image

from adapters.portal_standin.portal import STATUS_READY, PortalStandIn


def main(argv: list[str] | None = None) -> None:
    """``python -m adapters.portal_standin [--system-id ID …]``: serve until Ctrl-C.

    Each ``--system-id`` gets an assignment at status 1 with ``--images``
    generated JPEGs, ready for ``syndication photos``.
    """
    parser = argparse.ArgumentParser(description="Loopback stand-in of the photo portal.")
    parser.add_argument(
        "--system-id", action="append", default=[], help="a ready assignment for it"
    )
    parser.add_argument("--images", type=int, default=3, help="images per assignment")
    parser.add_argument("--token", default="standin-token")
    args = parser.parse_args(argv)
    portal = PortalStandIn(token=args.token).start()
    for system_id in args.system_id:
        assignment = portal.create_assignment(system_id, f"Fotografering {system_id}")
        for n in range(1, args.images + 1):
            buffer = io.BytesIO()
            Image.new("RGB", (1024, 768), (40 * n % 256, 120, 200)).save(buffer, "JPEG")
            portal.upload_image(assignment, buffer.getvalue(), title=f"Bild {n}", order=n)
        portal.set_status(assignment, STATUS_READY)
    print(f"SYNDICATION_PHOTO_PORTAL_URL={portal.url}")
    print(f"SYNDICATION_PHOTO_PORTAL_TOKEN={args.token}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        portal.stop()


main()
