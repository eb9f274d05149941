from django.dispatch import Signal

# Sent inside the writing transaction with customer_ids=[...] when orders or cancellations change a
# customer's history; other apps (the lifecycle engine) react after commit. crm knows no listener.
history_changed = Signal()
