"""kehu (客户): one system for the whole customer life cycle — CDP, marketing automation and CRM."""

__version__ = "0.1.0"
