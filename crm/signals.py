from django.dispatch import Signal

# Sent inside the writing transaction with customer_ids=[...] when orders or cancellations change a
# customer's history; other apps (the lifecycle engine) react after commit. crm knows no listener.
history_changed = Signal()

# Sent by crm.services.privacy with customer=... for a personal-data export: each listener returns
# {section name: [rows as JSON values]} with what its app holds about the customer.
customer_exporting = Signal()

# Sent inside the erasure's transaction with customer=... and now=...: each listener anonymises what its app
# holds about the customer (keeping the rows the KPIs count) and stops every contact, returning
# {what: how many rows}. An error rolls the whole erasure back.
customer_erasing = Signal()
