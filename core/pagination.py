"""The API's pages (a module of its own: DRF reads it while its generic views are being defined)."""

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """Pages of ``limit`` rows (PAGE_SIZE unless asked), at most ``max_limit``: a larger limit gets that many."""

    max_limit = 1000
