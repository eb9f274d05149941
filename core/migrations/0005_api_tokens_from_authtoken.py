"""Issue 13: API tokens move from rest_framework.authtoken (the key stored as is, never expiring) to
django-rest-knox (only a digest stored, an expiry).

Each existing key becomes a knox token with the same key: knox looks a token up by its first 15 characters
(``token_key``) and compares the SHA-512 digest of the whole string, whatever its length, so the 40-character
keys integrations already hold keep working, now with an expiry of API_TOKEN_TTL_DAYS from this migration.
Then the plain keys are deleted. The authtoken_token table itself stays (empty): rest_framework.authtoken left
INSTALLED_APPS, its migrations stay recorded, and dropping another app's table here would break a later
reinstall of it. A fresh database never had the table, and this does nothing.

Not reversible in substance: the plain keys cannot be recovered from their digests.
"""

import datetime as dt

from django.conf import settings
from django.db import migrations
from django.utils import timezone
from knox.crypto import hash_token
from knox.settings import CONSTANTS

PLAIN_TABLE = "authtoken_token"


def tokens_convert(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if PLAIN_TABLE not in connection.introspection.table_names():
        return
    AuthToken = apps.get_model("knox", "AuthToken")
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote('key')}, {quote('user_id')} FROM {quote(PLAIN_TABLE)}")
        rows = cursor.fetchall()
    expiry = timezone.now() + dt.timedelta(days=settings.API_TOKEN_TTL_DAYS)
    AuthToken.objects.bulk_create(
        [AuthToken(digest=hash_token(key), token_key=key[:CONSTANTS.TOKEN_KEY_LENGTH], user_id=user_id, expiry=expiry)
         for key, user_id in rows],
        ignore_conflicts=True,  # run again after a partial failure: the same key gives the same digest
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {quote(PLAIN_TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("core", "0004_enqueue_failure"), ("knox", "0009_extend_authtoken_field")]
    operations = [migrations.RunPython(tokens_convert, migrations.RunPython.noop)]
