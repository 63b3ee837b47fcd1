"""A loopback stand-in of the photographers' portal (seed 001), for tests and demos.

It keeps the portal's rules from the guide:

* an assignment ("oppdrag") names the listing's system id and has a
  transfer status: 0 being edited, 1 "Klar for overføring" (ready for
  transfer), 2 "Meglersystemet har hentet bildene" (the broker system has
  fetched the images);
* at status 0 it is freely editable: upload and delete images, change an
  image's title, tag or order, rename the assignment;
* at status 1 it cannot be changed, only deleted;
* at status 2 it cannot be deleted; more images can be uploaded and the
  assignment set to 1 again, and only those are fetched next time;
* images are deleted 30 days after their transfer while the assignment and
  its history stay.

Photographers' actions are the Python methods of :class:`PortalStandIn`
(:meth:`create_assignment`, :meth:`upload_image`, …); the broker system's side
is the HTTP API documented in the README ("Photo intake"), served by a
``ThreadingHTTPServer`` on 127.0.0.1. Fault controls make it fail in the middle
of a download, answer with a 5xx or answer slowly. The clock is injected.
"""

from adapters.portal_standin.portal import (
    IMAGE_RETENTION,
    STATUS_EDITING,
    STATUS_FETCHED,
    STATUS_READY,
    STATUS_TEXT,
    Assignment,
    PortalRuleError,
    PortalStandIn,
    StoredImage,
)

__all__ = [
    "IMAGE_RETENTION",
    "STATUS_EDITING",
    "STATUS_FETCHED",
    "STATUS_READY",
    "STATUS_TEXT",
    "Assignment",
    "PortalRuleError",
    "PortalStandIn",
    "StoredImage",
]
