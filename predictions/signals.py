from django.dispatch import Signal

# Sent after commit when predictions were rewritten: customer_ids=None after a fit (everyone), else the
# customers rescored. Other apps (the queue's priorities) react; predictions knows no listener.
predictions_refreshed = Signal()
