"""
The HTTP side: one twisted.web site for the feed, the API and the dashboard.
"""
