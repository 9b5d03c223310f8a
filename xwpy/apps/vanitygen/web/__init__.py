"""The vanity shop: a web page to order, pay for and follow a vanity address (``xwpy vanity web``)."""
