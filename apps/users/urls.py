from django.urls import path

from apps.users import views

public_urlpatterns = [
    path("stores/", views.store_list, name="store-list"),
    path("stores/<slug:slug>/go/", views.store_go, name="store-go"),
    path("invitations/<str:token>/", views.invitation_detail, name="invitation"),
]

store_account_urlpatterns = [
    path("handoff/", views.store_handoff, name="store-handoff"),
    path("logout/", views.store_logout, name="store-logout"),
]

team_urlpatterns = [
    path("", views.team, name="team"),
    path("invite/", views.team_invite, name="invite"),
    path("members/<int:membership_id>/role/", views.team_change_role, name="change-role"),
    path("members/<int:membership_id>/remove/", views.team_remove, name="remove"),
    path("members/<int:membership_id>/transfer/", views.team_transfer, name="transfer"),
    path("leave/", views.team_leave, name="leave"),
]
