"""POST /api/auth/logout/ and /api/auth/logoutall/: an integration revokes its own token, or all of them."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.authentication import TokenAuthentication
from core.services import api_token_revoke, api_tokens_revoke_all


class TokenView(APIView):
    authentication_classes = [TokenAuthentication]  # a session has no token to revoke
    permission_classes = [IsAuthenticated]


class TokenLogoutView(TokenView):
    @extend_schema(request=None, responses={204: None}, tags=["auth"],
                   summary=_("Revoke the token this request is made with"),
                   description=_("The token stops working at once; the user's other tokens keep working."))
    def post(self, request: Request) -> Response:
        api_token_revoke(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenLogoutAllView(TokenView):
    @extend_schema(request=None, responses={204: None}, tags=["auth"],
                   summary=_("Revoke every token of this request's user"),
                   description=_("Every token of the user, this one included, stops working at once."))
    def post(self, request: Request) -> Response:
        api_tokens_revoke_all(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
