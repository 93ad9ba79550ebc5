from django.http import HttpRequest


def wants_json(request: HttpRequest) -> bool:
    """API paths and clients that ask for JSON get JSON errors; browsers get pages."""
    if request.path_info.startswith("/api/"):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept
