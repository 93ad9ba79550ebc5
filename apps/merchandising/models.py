from django.db import models


class Placement(models.Model):
    """A slot of the store (home page, product page, cart, email...) with the scenario that
    fills it and the store's rules for it (apps.merchandising.rules, canonical JSON form)."""

    class Scenario(models.TextChoices):
        PERSONAL = "personal", "Personal (a shopper's list)"
        SESSION = "session", "Session (an anonymous visitor's list)"
        SIMILAR = "similar", "Similar items"
        BOUGHT_TOGETHER = "bought-together", "Bought together"
        BUY_AGAIN = "buy-again", "Buy again"
        TRENDING = "trending", "Trending"

    name = models.SlugField(max_length=64, unique=True)
    scenario = models.CharField(max_length=32, choices=Scenario.choices)
    rules = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
